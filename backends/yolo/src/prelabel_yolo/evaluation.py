"""The promotion gate's score of a yolo version on held-out annotated tasks.

Each control is scored on its own, then the scores are averaged:

* ``RectangleLabels`` and ``PolygonLabels``: COCO-style mAP50-95
  (:mod:`prelabel.metrics.average_precision`; polygons and rotated boxes by their bounding boxes) of
  the regions predicted at ``conf`` :data:`EVAL_CONF` (ultralytics validates at 0.001 too),
  after label mapping, so a base model and a fine-tuned one are measured alike. When the
  held-out tasks hold no region of the control, mAP is undefined; the control then scores
  the agreement of what it would serve (regions at its threshold) with those empty
  annotations, so false positives still cost.
* every other control (keypoints with their grouping boxes, masks, classes, tracked video
  boxes): core's :func:`~prelabel.metrics.agreement.agreement` with the annotation.

The metric is named after what was averaged: ``map50_95``, ``agreement``, or
``map50_95_and_agreement``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prelabel import Evaluation
from prelabel.metrics.agreement import agreement
from prelabel.metrics.average_precision import mean_average_precision

__all__ = ["EVAL_CONF", "RANKED", "Scored", "score"]

#: Confidence floor of held-out evaluation.
EVAL_CONF = 0.001
#: Control types scored by mAP (their regions are predicted down to :data:`EVAL_CONF`).
RANKED = frozenset({"rectanglelabels", "polygonlabels"})

Item = Mapping[str, Any]


@dataclass(frozen=True)
class Scored:
    """One control as the gate scores it.

    Attributes:
        names: the ``from_name`` of its results (a keypoint control's grouping box control too).
        served_conf: for a control scored by mAP, the threshold it serves at; else ``None``.
    """

    names: Collection[str]
    served_conf: float | None = None


def _own(items: Sequence[Item], names: Collection[str]) -> list[Item]:
    return [item for item in items if item.get("from_name") in names]


def _mean_agreement(
    predicted: Sequence[Sequence[Item]], annotated: Sequence[Sequence[Item]]
) -> float:
    pairs = list(zip(predicted, annotated, strict=True))
    return sum(agreement(p, a) for p, a in pairs) / len(pairs) if pairs else 0.0


def score(
    controls: Sequence[Scored],
    predicted: Sequence[Sequence[Item]],
    annotated: Sequence[Sequence[Item]],
) -> Evaluation:
    """The gate's :class:`~prelabel.Evaluation` of one version.

    Args:
        controls: the controls to score.
        predicted: per task, the version's LS results (mAP controls' regions down to
            :data:`EVAL_CONF`, with their ``score``).
        annotated: per task, the first annotation's results.
    """
    values: list[float] = []
    metrics: set[str] = set()
    for control in controls:
        ours = [_own(p, control.names) for p in predicted]
        theirs = [_own(a, control.names) for a in annotated]
        if control.served_conf is not None:
            average = mean_average_precision(zip(ours, theirs, strict=True))
            if average is not None:
                values.append(average)
                metrics.add("map50_95")
                continue
            threshold = control.served_conf
            ours = [[r for r in p if float(r.get("score", 1.0)) >= threshold] for p in ours]
        values.append(_mean_agreement(ours, theirs))
        metrics.add("agreement")
    name = "_and_".join(sorted(metrics, reverse=True)) or "agreement"
    return Evaluation(name, sum(values) / len(values) if values else 0.0)
