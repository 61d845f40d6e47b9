"""Mean average precision of scored regions against annotations, COCO-style.

For each label and IoU threshold (0.50, 0.55 … 0.95), every predicted region of that label
over all tasks is ranked by ``score``; going down the ranking, a prediction is a true positive
when it overlaps a not-yet-matched annotated region of the same label in the same task with
IoU ≥ the threshold (the best-overlapping one is taken). AP is the area under the precision
envelope sampled at 101 recall points; mAP is the mean over labels that have annotated regions,
then over thresholds. Regions are compared by their boxes (polygons, ellipses and rotated
rectangles by their bounding boxes, as :mod:`prelabel.metrics.agreement` does). Use it with predictions made at a low score
threshold: AP rewards ranking, and regions cut off by a threshold cap the reachable recall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from prelabel.metrics.agreement import Box, box_iou, region_box, region_label

__all__ = ["COCO_IOU_THRESHOLDS", "REGION_TYPES", "mean_average_precision"]

#: IoU thresholds of COCO's mAP50-95.
COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
#: Result types whose regions have a box to match.
REGION_TYPES = frozenset({"rectanglelabels", "polygonlabels", "ellipselabels"})
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)

Item = Mapping[str, Any]


def _regions(items: Iterable[Item]) -> list[tuple[str, Box, float]]:
    found = []
    for item in items:
        value = item.get("value")
        if item.get("type") not in REGION_TYPES or not isinstance(value, Mapping):
            continue
        box = region_box(item)
        if box is not None:
            score = item.get("score")
            found.append((region_label(value), box, float(score) if score is not None else 1.0))
    return found


def _average_precision(hits: Sequence[bool], n_true: int) -> float:
    """101-point interpolated AP of a ranked list of hits (True: a true positive)."""
    tp = np.cumsum(np.asarray(hits, dtype=float))
    recall = tp / n_true
    precision = tp / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at ≥ this recall
    at = np.searchsorted(recall, _RECALL_POINTS, side="left")
    sampled = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def _overlaps(
    ranked: list[tuple[float, int, Box]], truths: Mapping[int, list[Box]]
) -> list[list[tuple[float, int]]]:
    """Per prediction: ``(IoU, truth index)`` with each object of its task, largest first."""
    return [
        sorted(((box_iou(box, t), j) for j, t in enumerate(truths.get(task, ()))), reverse=True)
        for _, task, box in ranked
    ]


def _hits(
    overlaps: list[list[tuple[float, int]]], tasks: list[int], threshold: float
) -> list[bool]:
    """Greedy matching at ``threshold``, best score first: a prediction takes the free object
    it overlaps most; with none at ≥ ``threshold`` it is a false positive."""
    used: set[tuple[int, int]] = set()
    hits = []
    for candidates, task in zip(overlaps, tasks, strict=True):
        match = next(
            (j for iou, j in candidates if iou >= threshold and (task, j) not in used), None
        )
        if match is not None:
            used.add((task, match))
        hits.append(match is not None)
    return hits


def mean_average_precision(
    pairs: Iterable[tuple[Iterable[Item], Iterable[Item]]],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
) -> float | None:
    """mAP over tasks of ``(predicted results, annotated results)`` pairs (LS result lists).

    Returns ``None`` when no annotated region exists: precision over no objects is undefined
    (COCO leaves such categories out, too).
    """
    predicted: dict[str, list[tuple[float, int, Box]]] = defaultdict(list)
    annotated: dict[str, dict[int, list[Box]]] = defaultdict(lambda: defaultdict(list))
    for task, (pred, true) in enumerate(pairs):
        for label, box, score in _regions(pred):
            predicted[label].append((score, task, box))
        for label, box, _ in _regions(true):
            annotated[label][task].append(box)
    if not annotated:
        return None
    per_label = []
    for label, truths in annotated.items():
        n_true = sum(len(boxes) for boxes in truths.values())
        ranked = sorted(predicted.get(label, []), key=lambda p: -p[0])
        overlaps = _overlaps(ranked, truths)
        tasks = [task for _, task, _ in ranked]
        aps = [
            _average_precision(_hits(overlaps, tasks, t), n_true) if ranked else 0.0
            for t in iou_thresholds
        ]
        per_label.append(sum(aps) / len(aps))
    return sum(per_label) / len(per_label)
