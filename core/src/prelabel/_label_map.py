"""`LabelMap`: a model's class names mapped to a control's LS labels (see ``prelabel.config``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from prelabel._tags import Control

__all__ = ["LabelMap"]

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
