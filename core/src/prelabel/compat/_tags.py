"""The tags of ``self.label_interface``: label-studio-sdk's control, object and label tags.

Built from :mod:`prelabel.config`'s parse; an SDK name they do not offer raises
:class:`NotSupported`, whose message names the prelabel equivalent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from prelabel.config import Control, Label
from prelabel.config import ObjectTag as ConfigObject
from prelabel.errors import UnsupportedConfig
from prelabel.results import Region, new_region_id

__all__ = [
    "SAMPLES_INSTEAD",
    "VALIDATE_INSTEAD",
    "ControlTag",
    "LabelTag",
    "NameFilter",
    "NotSupported",
    "ObjectTag",
    "SDKNames",
    "TagType",
    "control_tag",
    "object_tag",
    "pick",
]

TagType = str | Iterable[str]
NameFilter = Callable[[str], bool]
_T = TypeVar("_T", "ObjectTag", "ControlTag")
# LS reads "$key" (no comma or space) as a task-data reference, anything else as a literal.
_VARIABLE = re.compile(r"\$[^\s,]+")


class NotSupported(AttributeError):
    """An SDK name ``prelabel.compat`` does not offer; the message says what to use instead."""


def _types(wanted: TagType) -> set[str]:
    # The SDK takes one tag type or a tuple of them, compared case-insensitively.
    return {wanted.lower()} if isinstance(wanted, str) else {w.lower() for w in wanted}


# What to use instead, for SDK names refused by several classes.
VALIDATE_INSTEAD = "prelabel checks every predicted region against the config and logs problems; to check yourself use prelabel.validation.result_problems(prediction['result'], self.config) or region_problems(region, self.config)"
SAMPLES_INSTEAD = "prelabel.testing builds scenarios for tests"


class SDKNames:
    """Answers an SDK name that prelabel does not offer with :class:`NotSupported`."""

    #: SDK names of this class that prelabel does not offer, with what to use instead.
    _unsupported: ClassVar[Mapping[str, str]] = {}

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the instance lacks; copy/pickle probe dunders here too.
        owner = type(self).__name__
        instead = type(self)._unsupported.get(name)
        if instead is None:
            raise AttributeError(f"{owner!r} object has no attribute {name!r}")
        raise NotSupported(
            f"label-studio-sdk's {owner}.{name} is not offered by prelabel.compat; {instead}."
        )


@dataclass(eq=False, kw_only=True)
class _Tag(SDKNames):
    """What every SDK tag has: ``tag`` (the element name) and ``attr`` (its XML attributes)."""

    tag: str
    attr: dict[str, str] = field(default_factory=dict)

    def get_attr(self, name: str, default: Any = None) -> Any:
        """An attribute by name (also lowercased, as LS's editor writes it); blank → ``default``."""
        value = self.attr.get(name, self.attr.get(name.lower()))
        return default if value is None or not value.strip() else value


@dataclass(eq=False, kw_only=True)
class LabelTag(_Tag):
    """A ``<Label>`` or ``<Choice>``: ``value`` is what LS stores (the alias, else the value)."""

    value: str
    parent_name: str


@dataclass(eq=False, kw_only=True)
class ObjectTag(_Tag):
    """A data object (``Image``, ``Text``…): ``value`` as written (``"$image"``)."""

    name: str
    value: str

    _unsupported: ClassVar[Mapping[str, str]] = {
        "children": "parse the XML (self.label_config) if you need an object's child elements",
        "collect_attrs": "use dict(obj.attr)",
        "generate_example_value": SAMPLES_INSTEAD,
        "validate_config": "Label Studio validates the config when it is saved",
    }

    @property
    def value_name(self) -> str:
        """The task-data key: ``value`` without its ``$`` (``"image"`` for ``"$image"``)."""
        return self.value.removeprefix("$")

    @property
    def value_is_variable(self) -> bool:
        """Whether ``value`` names task data (``$key``) rather than being a literal."""
        return _VARIABLE.fullmatch(self.value) is not None

    @property
    def value_type(self) -> str | None:
        """The ``valueType`` attribute (``"url"`` when the data holds a link to the content)."""
        return self.attr.get("valueType") or self.attr.get("valuetype")

    def match(self, tag_type: TagType, to_name_filter_fn: NameFilter | None = None) -> bool:
        """Whether the object is of ``tag_type`` and its (lowercased) name passes the filter."""
        return self.tag.lower() in _types(tag_type) and (
            to_name_filter_fn is None or bool(to_name_filter_fn(self.name.lower()))
        )


@dataclass(eq=False, kw_only=True)
class ControlTag(_Tag):
    """A control (``Choices``, ``Labels``, ``RectangleLabels``…) and the objects it labels.

    Attributes:
        name: the result's ``from_name``.
        to_name: the object names of ``toName``.
        objects: the objects of ``to_name`` that exist in the config.
        labels: what LS stores for each label (alias, else value), in document order; a
            Taxonomy's nested choices included.
        labels_attrs: the same labels as ``{label: LabelTag}`` (e.g. ``.attr["predicted_values"]``).
    """

    name: str
    to_name: list[str]
    objects: list[ObjectTag] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    labels_attrs: dict[str, LabelTag] = field(default_factory=dict)

    _unsupported: ClassVar[Mapping[str, str]] = {
        "as_tuple": "use (control.name, control.to_name, control.tag)",
        "collect_attrs": "use dict(control.attr)",
        "conditionals": "read control.attr ('perRegion', 'whenTagName', 'whenLabelValue', 'whenChoiceValue')",
        "dynamic_value": "read control.attr.get('value') (a $key means labels come from task data)",
        "find_object_by_name": "use control.get_object(name)",
        "get_labels": "read region['value'][control.tag.lower()] of the regions",
        "is_output_required": "read control.attr.get('required')",
        "set_labels": "the labels come from the labeling config",
        "set_labels_attrs": "the labels come from the labeling config",
        "set_object": "the objects come from the labeling config",
        "set_objects": "the objects come from the labeling config",
        "to_json_schema": "build the schema from control.labels",
        "validate_value": VALIDATE_INSTEAD,
    }

    @property
    def is_multiple_choice(self) -> bool:
        """Whether several choices may be picked (``choice="multiple"``)."""
        return (self.get_attr("choice") or "single") == "multiple"

    def get_object(self, name: str | None = None) -> ObjectTag:
        """The object called ``name``, or the only one when ``name`` is ``None``.

        Raises:
            UnsupportedConfig: no such object, or several and no ``name``.
        """
        return pick(f"control {self.name!r}'s objects", self.objects, name)

    get_input = get_object

    def match(self, tag_type: TagType, name_filter_fn: NameFilter | None = None) -> bool:
        """Whether the control is of ``tag_type`` and its (lowercased) name passes the filter."""
        return self.tag.lower() in _types(tag_type) and (
            name_filter_fn is None or bool(name_filter_fn(self.name.lower()))
        )

    def label(
        self, label: str | list[str] | None = None, to_name: str | None = None, **value: Any
    ) -> Region:
        """A result region of this control: ``label`` fills its labels, ``value`` the rest.

        ``rectangle.label("Car", x=10, y=20, width=30, height=40)``; ``to_name`` defaults to the
        first object. The region goes into ``PredictionValue(result=[...])`` as it is.

        Raises:
            ValueError: a label that is not the control's, or labels for a control without any.
        """
        if to_name is not None and to_name not in self.to_name:
            raise ValueError(f"{to_name!r} is not in {self.name}'s toName {self.to_name}.")
        fields = dict(value)
        if label is not None:
            labels = [label] if isinstance(label, str) else list(label)
            if not self.labels:
                raise ValueError(f"{self.tag} {self.name!r} has no labels; pass its value fields.")
            unknown = [name for name in labels if name not in self.labels]
            if unknown:
                raise ValueError(f"{unknown} are not labels of {self.name!r}: {self.labels}.")
            fields[self.tag.lower()] = labels
        return Region(
            from_name=self.name,
            to_name=to_name or self.to_name[0],
            type=self.tag.lower(),
            value=fields,
            id=new_region_id(),
        )


def pick(where: str, tags: list[_T], name: str | None) -> _T:
    """The SDK's lookup rule: the tag called ``name``, else the only one."""
    if name is not None:
        for tag in tags:
            if tag.name == name:
                return tag
        known = ", ".join(repr(t.name) for t in tags) or "none"
        raise UnsupportedConfig(f"No {name!r} among {where} (there are: {known}).")
    if len(tags) == 1:
        return tags[0]
    known = ", ".join(repr(t.name) for t in tags) or "none"
    raise UnsupportedConfig(f"Name one of {where}: there are {len(tags)} ({known}).")


def _labels(control: Control) -> list[Label]:
    """Every label of a control in document order, a Taxonomy's nested choices included."""
    found: list[Label] = []
    stack = list(reversed(control.labels))
    while stack:
        label = stack.pop()
        found.append(label)
        stack.extend(reversed(label.children))
    return found


def object_tag(obj: ConfigObject) -> ObjectTag:
    return ObjectTag(tag=obj.tag, name=obj.name, value=obj.value, attr=dict(obj.attrs))


def control_tag(control: Control, objects: Mapping[str, ObjectTag]) -> ControlTag:
    # Two labels with one name are one entry, the later one winning, as in the SDK.
    attrs = {
        label.name: LabelTag(
            tag="Choice" if control.type in ("choices", "taxonomy") else "Label",
            value=label.name,
            parent_name=control.name,
            attr=dict(label.attrs),
        )
        for label in _labels(control)
    }
    return ControlTag(
        tag=control.tag,
        name=control.name,
        to_name=list(control.to_name),
        attr=dict(control.attrs),
        objects=[objects[obj.name] for obj in control.objects],
        labels=list(attrs),
        labels_attrs=attrs,
    )
