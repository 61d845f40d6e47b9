"""Mean average precision of scored regions against annotations, COCO-style.

For each label and IoU threshold (0.50, 0.55 … 0.95), every predicted region of that label
over all tasks is ranked by ``score``; going down the ranking, a prediction is a true positive
when it overlaps a not-yet-matched annotated region of the same label in the same task with
IoU ≥ the threshold (the best-overlapping one is taken). AP is the area under the precision
envelope sampled at 101 recall points; mAP is the mean over labels that have annotated regions,
then over thresholds. Regions are compared by their boxes (polygons, ellipses and rotated
rectangles by their bounding boxes, as :mod:`prelabel.agreement` does). Use it with predictions made at a low score
threshold: AP rewards ranking, and regions cut off by a threshold cap the reachable recall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from prelabel.agreement import Box, box_iou, region_box, region_label

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


def mean_average_precision(
    pairs: Iterable[tuple[Iterable[Item], Iterable[Item]]],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
) -> float | None:
    """mAP over tasks of ``(predicted results, annotated results)`` pairs (LS result lists).

    Returns ``None`` when neither side has a region to compare; ``0.0`` when only the
    predictions have regions (all false positives).
    """
    predicted: dict[str, list[tuple[float, int, Box]]] = defaultdict(list)
    annotated: dict[str, dict[int, list[Box]]] = defaultdict(lambda: defaultdict(list))
    for task, (pred, true) in enumerate(pairs):
        for label, box, score in _regions(pred):
            predicted[label].append((score, task, box))
        for label, box, _ in _regions(true):
            annotated[label][task].append(box)
    if not annotated:
        return 0.0 if predicted else None
    per_threshold = []
    for threshold in iou_thresholds:
        aps = []
        for label, truths in annotated.items():
            n_true = sum(len(boxes) for boxes in truths.values())
            ranked = sorted(predicted.get(label, []), key=lambda p: -p[0])
            used: set[tuple[int, int]] = set()
            hits = []
            for _, task, box in ranked:
                best, best_j = threshold, -1
                for j, truth in enumerate(truths.get(task, ())):
                    iou = box_iou(box, truth)
                    if (task, j) not in used and iou >= best:
                        best, best_j = iou, j
                if best_j >= 0:
                    used.add((task, best_j))
                hits.append(best_j >= 0)
            aps.append(_average_precision(hits, n_true) if hits else 0.0)
        per_threshold.append(sum(aps) / len(aps))
    return sum(per_threshold) / len(per_threshold)
