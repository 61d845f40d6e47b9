"""The parsed pieces of a labeling config: labels, objects and controls (see ``prelabel.config``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prelabel.errors import UnsupportedConfig

__all__ = ["Control", "Label", "ObjectTag"]

# LS treats "$key" (no comma or space) as a task-data reference, anything else as a literal.
VARIABLE = re.compile(r"\$([^\s,]+)")

# Tags whose result type is not their lowercased name: a <Chat> stores its messages as
# ``chatmessage`` results (label_studio_sdk's ChatMessageTag).
_RESULT_TYPES = {"chat": "chatmessage"}


def attr(attrs: Mapping[str, str], key: str) -> str:
    """An attribute, also under the lowercased name the LS editor accepts ("perregion")."""
    return attrs.get(key, attrs.get(key.lower(), "")).strip()


def _is_true(attrs: Mapping[str, str], key: str) -> bool:
    return attr(attrs, key).lower() == "true"


@dataclass(frozen=True)
class Label:
    """A ``<Label>`` or ``<Choice>`` of a control.

    Attributes:
        value: the ``value`` attribute.
        alias: the ``alias`` attribute, ``None`` when absent or empty.
        attrs: all XML attributes.
        children: nested ``<Choice>`` elements (Taxonomy and nested Choices), in order.
    """

    value: str
    alias: str | None
    attrs: Mapping[str, str] = field(hash=False)
    children: tuple[Label, ...] = ()

    @property
    def name(self) -> str:
        """What LS stores in results: the alias if set, else the value."""
        return self.alias or self.value

    @property
    def predicted_values(self) -> tuple[str, ...]:
        """Model class names declared by ``predicted_values="car,truck"``."""
        raw = self.attrs.get("predicted_values", "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class ObjectTag:
    """A data object the annotator labels (``Image``, ``Text``, ``Audio``…).

    Attributes:
        tag: the element name as written, e.g. ``"Image"``.
        name: the ``name`` attribute that controls point to with ``toName``.
        value: the raw ``value`` (``valueList`` when ``value`` is absent), e.g. ``"$image"``.
        attrs: all XML attributes.
    """

    tag: str
    name: str
    value: str
    attrs: Mapping[str, str] = field(hash=False)

    @property
    def value_key(self) -> str | None:
        """The task-data key: ``"image"`` for ``"$image"``; ``None`` for a literal value."""
        match = VARIABLE.fullmatch(self.value)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Control:
    """A control tag: what produces results (``Choices``, ``RectangleLabels``, ``TextArea``…).

    Attributes:
        tag: the element name as written, e.g. ``"RectangleLabels"``.
        name: the ``name`` attribute (a result's ``from_name``).
        to_name: the names in ``toName``, in order (a ``Chat`` without one points to itself).
        attrs: all XML attributes.
        labels: the control's labels in document order; for ``Taxonomy`` only the top-level
            choices (the tree is in their ``children`` and :meth:`taxonomy_paths`).
        objects: the objects named in ``to_name`` that exist in the config, in that order.
        buckets: the names of a ``Ranker``'s ``<Bucket>`` children, in order.
    """

    tag: str
    name: str
    to_name: tuple[str, ...]
    attrs: Mapping[str, str] = field(hash=False)
    labels: tuple[Label, ...] = ()
    objects: tuple[ObjectTag, ...] = ()
    buckets: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        """The LS result ``type``: the tag lowercased (``"rectanglelabels"``; ``Chat``:
        ``"chatmessage"``)."""
        lowered = self.tag.lower()
        return _RESULT_TYPES.get(lowered, lowered)

    @property
    def label_names(self) -> tuple[str, ...]:
        """The names LS stores for the labels, in order."""
        return tuple(label.name for label in self.labels)

    @property
    def dynamic_labels(self) -> bool:
        """Whether the labels come from task data (``value="$labels"`` on a ``Choices``,
        ``Taxonomy`` or ``*Labels`` control): LS accepts any label there."""
        labelled = self.type in ("choices", "taxonomy") or self.type.endswith("labels")
        return labelled and VARIABLE.fullmatch(attr(self.attrs, "value")) is not None

    @property
    def multiple(self) -> bool:
        """Whether several labels may be chosen (``choice="multiple"``, or a Taxonomy)."""
        return self.type == "taxonomy" or attr(self.attrs, "choice") == "multiple"

    @property
    def model_attrs(self) -> Mapping[str, str]:
        """Backend options set on the control: attributes starting with ``model_``."""
        return {key: value for key, value in self.attrs.items() if key.startswith("model_")}

    @property
    def smart(self) -> bool:
        """Whether the control takes interactive input (``smart`` or ``smartOnly``)."""
        return _is_true(self.attrs, "smart") or _is_true(self.attrs, "smartOnly")

    @property
    def per_region(self) -> bool:
        """Whether results attach to regions of another control (``perRegion="true"``)."""
        return _is_true(self.attrs, "perRegion")

    def taxonomy_paths(self) -> tuple[tuple[str, ...], ...]:
        """Every root-to-node path of a Taxonomy's choices, depth first; empty for others."""
        if self.type != "taxonomy":
            return ()
        paths: list[tuple[str, ...]] = []
        stack: list[tuple[tuple[str, ...], Label]]
        stack = [((label.name,), label) for label in reversed(self.labels)]
        while stack:
            path, label = stack.pop()
            paths.append(path)
            stack.extend(((*path, child.name), child) for child in reversed(label.children))
        return tuple(paths)

    def has_label(self, name: str) -> bool:
        """Whether one of :attr:`labels` has this LS name."""
        return name in self.label_names

    def accepts_label(self, name: object) -> bool:
        """Whether LS accepts ``name`` as a label here: one of :attr:`labels`, or, with
        :attr:`dynamic_labels`, any non-empty string."""
        if not isinstance(name, str):
            return False
        return bool(name) if self.dynamic_labels else self.has_label(name)

    def task_label_names(self, data: Mapping[str, Any]) -> tuple[str, ...]:
        """The label names a task offers: :attr:`label_names`, then those of its data.

        LS reads dynamic labels from the task key in ``value``: a list of strings or of
        ``{"value", "alias", "children"}`` objects (every node of the tree counts).
        """
        names = list(self.label_names)
        match = VARIABLE.fullmatch(attr(self.attrs, "value"))
        stack = [data.get(match.group(1))] if match else []
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, str) and item:
                names.append(item)
            elif isinstance(item, Mapping):
                name = item.get("alias") or item.get("value")
                if isinstance(name, str) and name:
                    names.append(name)
                stack.append(item.get("children"))
        return tuple(dict.fromkeys(names))

    def object(self, name: str | None = None) -> ObjectTag:
        """The first object this control points to, or the one called ``name``.

        Raises:
            UnsupportedConfig: the control points to no such object.
        """
        for obj in self.objects:
            if name is None or obj.name == name:
                return obj
        wanted = "any object" if name is None else f"an object named {name!r}"
        raise UnsupportedConfig(
            f"Control {self.name!r} ({self.tag}) has toName={','.join(self.to_name)!r}, "
            f"which does not point to {wanted} in the labeling config."
        )
