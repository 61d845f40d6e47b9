"""How predictions compare with annotations, and what a prediction's score means.

* :mod:`~prelabel.metrics.agreement` — agreement of a prediction with an annotation, in [0, 1]
  (the default promotion gate, and the acceptance metrics);
* :mod:`~prelabel.metrics.average_precision` — COCO-style mAP50-95 over boxes;
* :mod:`~prelabel.metrics.scoring` — class probabilities to a task's ``score``, and the
  control group;
* :mod:`~prelabel.metrics.bias` — the control group's annotator-bias gap with its interval.
"""

from prelabel.metrics.agreement import agreement, box_iou, region_box, region_label
from prelabel.metrics.average_precision import mean_average_precision
from prelabel.metrics.bias import BiasGap, agreement_gap, gaps_by_version, wilson_interval
from prelabel.metrics.scoring import ScorePolicy, in_control_group, score_from_probabilities

__all__ = [
    "BiasGap",
    "ScorePolicy",
    "agreement",
    "agreement_gap",
    "box_iou",
    "gaps_by_version",
    "in_control_group",
    "mean_average_precision",
    "region_box",
    "region_label",
    "score_from_probabilities",
    "wilson_interval",
]
