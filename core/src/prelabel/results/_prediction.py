"""`Region` and `Prediction`: the only place LS prediction JSON is written."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prediction", "Region", "new_region_id"]


def new_region_id() -> str:
    """A short random region id, like the ones the LS editor makes."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Region:
    """One item of a prediction's ``result`` list (protocol §9.1).

    Build regions with the functions in :mod:`prelabel.results`; they validate labels and
    coordinates against the control. ``extra`` holds the optional top-level keys
    (``original_width``, ``original_height``, ``image_rotation``, ``readonly``, ``parentID``…).
    """

    from_name: str
    to_name: str
    type: str
    value: Mapping[str, Any]
    id: str | None = None
    score: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_ls(self) -> dict[str, Any]:
        """Serialise to LS's result-item JSON."""
        item: dict[str, Any] = {}
        if self.id is not None:
            item["id"] = self.id
        item.update(from_name=self.from_name, to_name=self.to_name, type=self.type)
        item.update(self.extra)
        item["value"] = dict(self.value)
        if self.score is not None:
            item["score"] = float(self.score)
        return item


@dataclass
class Prediction:
    """A backend's prediction for one task.

    Attributes:
        result: the regions.
        score: the model's confidence for the task in [0, 1] (higher = more certain). Leave
            it ``None`` and set ``probabilities`` to let the server's score policy compute it;
            with neither, the mean region score is used, and ``null`` when there is none.
        probabilities: the class distribution behind the task's main decision, if any.
        model_version: set by the server; backends leave it ``None``.
    """

    result: list[Region] = field(default_factory=list)
    score: float | None = None
    probabilities: Sequence[float] | None = None
    model_version: str | None = None

    @classmethod
    def empty(cls) -> Prediction:
        """The prediction for a task with nothing to predict (never drop the task)."""
        return cls()

    def region_score(self) -> float | None:
        """Mean of the regions' scores, or ``None`` when no region carries one."""
        scores = [r.score for r in self.result if r.score is not None]
        return sum(scores) / len(scores) if scores else None

    def to_ls(self) -> dict[str, Any]:
        """Serialise to LS's prediction JSON; ``model_version`` must have been stamped."""
        if not self.model_version:
            raise ValueError("Prediction.model_version must be a non-empty string before to_ls()")
        score = self.score
        if score is not None and (math.isnan(score) or math.isinf(score)):
            score = None
        return {
            "result": [region.to_ls() for region in self.result],
            "score": None if score is None else float(score),
            "model_version": self.model_version,
        }
