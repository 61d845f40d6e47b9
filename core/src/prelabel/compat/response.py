"""``ModelResponse`` and ``PredictionValue``: what a ``LabelStudioMLBase.predict`` may return.

Same fields and methods as ``label_studio_ml.response.ModelResponse`` and the SDK's
``PredictionValue``, with one deliberate change: a missing ``score`` is ``None`` ("unknown"),
not ``0.0`` (which made unscored tasks look maximally uncertain; protocol §6.4).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prelabel.results import Region

__all__ = ["ModelResponse", "PredictionValue"]


class PredictionValue(BaseModel):
    """One prediction for one task: regions (LS result dicts or prelabel ``Region``s)."""

    model_config = ConfigDict(protected_namespaces=(), arbitrary_types_allowed=True)

    model_version: str | None = None
    score: float | None = None
    result: list[dict[str, Any] | Region] = Field(default_factory=list)


class ModelResponse(BaseModel):
    """Predictions for a batch of tasks: one entry (or a list of entries) per task."""

    model_config = ConfigDict(protected_namespaces=())

    model_version: str | None = None
    predictions: list[PredictionValue | list[PredictionValue]]

    def has_model_version(self) -> bool:
        """Whether the response carries a version."""
        return bool(self.model_version)

    def update_predictions_version(self) -> None:
        """Give every prediction without a version the response's version."""
        for entry in self.predictions:
            for prediction in entry if isinstance(entry, list) else [entry]:
                if not prediction.model_version:
                    prediction.model_version = self.model_version

    def set_version(self, version: str) -> None:
        """Set the response's version and stamp it on predictions that lack one."""
        self.model_version = version
        self.update_predictions_version()
