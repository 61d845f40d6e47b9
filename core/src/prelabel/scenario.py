"""What the conformance kit feeds a backend: a labeling config, tasks, optional training data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Scenario", "annotated_task", "text_task"]


@dataclass(frozen=True)
class Scenario:
    """One labeling setup the backend must handle.

    Attributes:
        label_config: the LS labeling config XML.
        tasks: LS task dicts to predict (``{"id": 1, "data": {...}}`` is enough).
        train_tasks: annotated tasks for ``fit`` (LS export format); needed for trainable backends.
        interaction: ``params.context.result`` items for interactive backends.
        settings: backend settings overrides for this scenario.
    """

    label_config: str
    tasks: Sequence[Mapping[str, Any]]
    train_tasks: Sequence[Mapping[str, Any]] = ()
    interaction: Sequence[Mapping[str, Any]] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


def text_task(task_id: int, text: str, key: str = "text") -> dict[str, Any]:
    """A minimal LS task with one text field."""
    return {"id": task_id, "data": {key: text}, "annotations": [], "predictions": []}


def annotated_task(
    task_id: int, data: Mapping[str, Any], result: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A task with one submitted annotation, as LS exports it."""
    return {
        "id": task_id,
        "data": dict(data),
        "annotations": [
            {"id": task_id * 10, "task": task_id, "result": list(result), "was_cancelled": False}
        ],
    }
