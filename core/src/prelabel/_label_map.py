"""`LabelMap`: a model's class names mapped to a control's LS labels, and `LabelCoverage`:
which labels a backend can predict (see ``prelabel.config``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from prelabel._tags import Control

__all__ = ["CoverageSource", "LabelCoverage", "LabelMap"]

#: Where a control's predicted labels come from: a model's fixed ``classes``, labels
#: ``learned`` from the project's annotations, labels given to the model in its ``prompt``, or
#: ``unknown`` (the backend does not say).
CoverageSource = Literal["classes", "learned", "prompt", "unknown"]

logger = logging.getLogger("prelabel.config")


@dataclass(frozen=True)
class LabelMap:
    """How a model's class names map to a control's LS labels; build with :meth:`build`.

    Attributes:
        mapping: model name to LS label name, in input order.
        unmapped: model names with no label, in input order.
        label_names: the LS label names the map was built against.
    """

    mapping: Mapping[str, str] = field(hash=False)
    unmapped: tuple[str, ...]
    label_names: tuple[str, ...]

    @classmethod
    def build(
        cls,
        control: Control,
        model_names: Iterable[str],
        task_data: Mapping[str, Any] | None = None,
    ) -> LabelMap:
        """Map each model name to a label of ``control``, first rule that matches wins.

        1. a label whose ``predicted_values`` contains the name;
        2. a label whose name (alias, else value) equals it;
        3. the same, ignoring case;
        4. ``predicted_values``, ignoring case.

        When several labels match one rule, the first in document order wins. A control with
        dynamic labels (``value="$labels"``) takes its labels from ``task_data`` when given
        (:meth:`Control.task_label_names`); without it every model name maps to itself, as
        LS accepts any label there.
        """
        label_names = control.label_names
        if control.dynamic_labels and task_data is not None:
            label_names = control.task_label_names(task_data)
        exact_predicted: dict[str, str] = {}
        folded_predicted: dict[str, str] = {}
        folded_names: dict[str, str] = {}
        for name in label_names:
            folded_names.setdefault(name.casefold(), name)
        for label in control.labels:
            for predicted in label.predicted_values:
                exact_predicted.setdefault(predicted, label.name)
                folded_predicted.setdefault(predicted.casefold(), label.name)
        names = set(label_names)
        any_name = control.dynamic_labels and task_data is None

        mapping: dict[str, str] = {}
        unmapped: dict[str, None] = {}  # an ordered set
        for model_name in model_names:
            folded = model_name.casefold()
            target = (
                exact_predicted.get(model_name)
                or (model_name if model_name in names else None)
                or folded_names.get(folded)
                or folded_predicted.get(folded)
                or (model_name if any_name and model_name else None)
            )
            if target is None:
                unmapped[model_name] = None
            else:
                mapping[model_name] = target
        if unmapped:
            logger.debug(
                "control %r: model names without a label (ignored): %s",
                control.name,
                ", ".join(unmapped),
            )
        return cls(MappingProxyType(mapping), tuple(unmapped), label_names)

    def get(self, model_name: str) -> str | None:
        """The LS label name for ``model_name``, or ``None`` when it has none."""
        return self.mapping.get(model_name)

    def __contains__(self, model_name: object) -> bool:
        return model_name in self.mapping

    def __len__(self) -> int:
        return len(self.mapping)

    @property
    def unreachable(self) -> tuple[str, ...]:
        """LS label names that no model name maps to, in label order."""
        reached = set(self.mapping.values())
        return tuple(name for name in self.label_names if name not in reached)


@dataclass(frozen=True)
class LabelCoverage:
    """Which labels of one control a backend can predict (``Backend.label_coverage``).

    ``prelabel doctor`` and ``/setup``'s log show it, so users see which model classes land
    on which labels, and which labels can never be predicted, before annotating.

    Attributes:
        control: the control's name.
        tag: its tag (``"RectangleLabels"``…).
        labels: the control's LS labels (empty for labels taken from task data).
        source: where predicted labels come from (:data:`CoverageSource`).
        mapping: for ``classes``: model class → LS label.
        unmapped: for ``classes``: model classes no label takes (their detections are dropped).
        unreachable: for ``classes``: labels no model class maps to (never predicted).
    """

    control: str
    tag: str
    labels: tuple[str, ...]
    source: CoverageSource = "unknown"
    mapping: Mapping[str, str] = field(default_factory=dict, hash=False)
    unmapped: tuple[str, ...] = ()
    unreachable: tuple[str, ...] = ()

    @classmethod
    def of(cls, control: Control, source: CoverageSource) -> LabelCoverage:
        """A control whose labels all come from ``source`` (``learned``, ``prompt``…)."""
        return cls(control.name, control.tag, control.label_names, source)

    @classmethod
    def from_label_map(cls, control: Control, label_map: LabelMap) -> LabelCoverage:
        """A model's classes on ``control``, as ``label_map`` maps them."""
        return cls(
            control.name,
            control.tag,
            control.label_names,
            "classes",
            dict(label_map.mapping),
            label_map.unmapped,
            label_map.unreachable,
        )
