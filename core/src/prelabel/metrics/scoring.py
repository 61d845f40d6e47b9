"""One meaning of ``score`` across backends: the model's confidence for the task, in [0, 1].

Sorting tasks by score ascending in Label Studio (or its "Uncertainty sampling") puts the
most uncertain tasks first. Backends report class probabilities; the policy chosen with
``PRELABEL_SCORE_POLICY`` turns them into the score:

* ``least_confidence`` — the top probability;
* ``margin`` — top probability minus the runner-up (1.0 for a single class);
* ``entropy`` — ``1 - H(p) / log(K)``, so a uniform distribution scores 0.

The control group (``PRELABEL_CONTROL_FRACTION``) is chosen here too, deterministically from
the project and the task id, so a task stays in or out of it across runs and workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from prelabel.annotations import hash_bucket

__all__ = ["ScorePolicy", "in_control_group", "score_from_probabilities"]

ScorePolicy = Literal["least_confidence", "margin", "entropy"]


def _normalise(probabilities: Sequence[float]) -> list[float]:
    values = [max(0.0, float(p)) for p in probabilities if math.isfinite(float(p))]
    total = sum(values)
    if not values or total <= 0.0:
        raise ValueError("probabilities must contain at least one positive finite value")
    return [v / total for v in values]


def score_from_probabilities(probabilities: Sequence[float], policy: ScorePolicy) -> float:
    """Turn a class distribution into a confidence in [0, 1] with ``policy``."""
    p = sorted(_normalise(probabilities), reverse=True)
    if policy == "least_confidence":
        score = p[0]
    elif policy == "margin":
        score = p[0] - (p[1] if len(p) > 1 else 0.0)
    elif policy == "entropy":
        if len(p) == 1:
            return 1.0
        entropy = -sum(x * math.log(x) for x in p if x > 0.0)
        score = 1.0 - entropy / math.log(len(p))
    else:
        raise ValueError(f"unknown score policy {policy!r}")
    return min(1.0, max(0.0, score))


def in_control_group(project: str, task_id: object, fraction: float) -> bool:
    """Whether a task belongs to the control group that gets no pre-annotation."""
    if fraction <= 0.0 or task_id is None:
        return False
    if fraction >= 1.0:
        return True
    return hash_bucket(project, task_id) < fraction
