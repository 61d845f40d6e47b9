"""How predictions compare with annotations, and what a prediction's score means.

* :mod:`~prelabel.metrics.agreement` — agreement of a prediction with an annotation, in [0, 1]
  (the default promotion gate, and the acceptance metrics);
* :mod:`~prelabel.metrics.average_precision` — COCO-style mAP50-95 over boxes;
* :mod:`~prelabel.metrics.scoring` — class probabilities to a task's ``score``, and the
  control group.
"""

from prelabel.metrics.agreement import agreement, box_iou, region_box, region_label
from prelabel.metrics.average_precision import mean_average_precision
from prelabel.metrics.scoring import ScorePolicy, in_control_group, score_from_probabilities

__all__ = [
    "ScorePolicy",
    "agreement",
    "box_iou",
    "in_control_group",
    "mean_average_precision",
    "region_box",
    "region_label",
    "score_from_probabilities",
]
