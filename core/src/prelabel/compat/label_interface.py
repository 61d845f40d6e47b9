"""``self.label_interface``: label-studio-sdk's ``LabelInterface`` names over prelabel's parser.

Models written for Label Studio's ML SDK read their labeling config through
``self.label_interface``. This module offers the part of that API such models use, with the
SDK's names and return shapes, built on :class:`prelabel.config.LabelConfig` (prelabel does not
depend on label-studio-sdk). An SDK name it does not offer raises :class:`NotSupported`, whose
message names the prelabel equivalent; any other unknown name is a plain ``AttributeError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from prelabel.config import Control, Label, LabelConfig
from prelabel.config import ObjectTag as ConfigObject
from prelabel.errors import UnsupportedConfig
from prelabel.results import Region, new_region_id

__all__ = ["ControlTag", "LabelInterface", "LabelTag", "NotSupported", "ObjectTag"]

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


_VALIDATE = "prelabel checks every predicted region against the config and logs problems; to check one yourself use prelabel.validation.region_problems(region, self.config)"
_SAMPLES = "prelabel.testing builds scenarios for tests"


class _SDKNames:
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
class _Tag(_SDKNames):
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
        "generate_example_value": _SAMPLES,
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
        "validate_value": _VALIDATE,
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
        return _pick(f"control {self.name!r}'s objects", self.objects, name)

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


def _pick(where: str, tags: list[_T], name: str | None) -> _T:
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


def _object(obj: ConfigObject) -> ObjectTag:
    return ObjectTag(tag=obj.tag, name=obj.name, value=obj.value, attr=dict(obj.attrs))


def _control(control: Control, objects: Mapping[str, ObjectTag]) -> ControlTag:
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


class LabelInterface(_SDKNames):
    """A labeling config with label-studio-sdk's ``LabelInterface`` names.

    Args:
        config: the XML, or a parsed :class:`~prelabel.config.LabelConfig`.

    Raises:
        BadRequest: the XML is not a valid labeling config.
    """

    _unsupported: ClassVar[Mapping[str, str]] = {
        "config_essential_data_has_changed": "prelabel.compat recreates the model when the config changes",
        "config_line_stipped": "use self.label_config",
        "create": "write the XML",
        "create_instance": "write the XML",
        "create_regions": "build each region with control.label(...) or the prelabel.results builders",
        "extract_data_types": "use label_interface.objects",
        "find_tags_by_class": "use find_tags(match_fn=lambda tag: tag.tag == 'Image')",
        "generate_complete_sample_task": _SAMPLES,
        "generate_sample_annotation": _SAMPLES,
        "generate_sample_prediction": _SAMPLES,
        "generate_sample_task": _SAMPLES,
        "get_all_control_tag_tuples": "use label_interface.controls",
        "get_all_labels": "use label_interface.labels",
        "get_all_object_tag_names": "use label_interface.object_tags",
        "get_task_from_labeling_config": "keep sample tasks in your tests",
        "is_valid": _VALIDATE,
        "is_video_object_tracking": "use find_tags(match_fn=lambda tag: tag.tag == 'VideoRectangle')",
        "load_task": "read task['data'][obj.value_name], media through self.get_local_path(url, task_id=task['id'])",
        "parse": "use prelabel.config.LabelConfig.parse(xml)",
        "parse_config_to_json": "use self.parsed_label_config",
        "pdf_tags": "use find_tags('objects', lambda tag: tag.tag.lower() == 'pdf')",
        "to_json_schema": "build the schema from label_interface.controls and their labels",
        "validate": _VALIDATE,
        "validate_annotation": _VALIDATE,
        "validate_prediction": _VALIDATE,
        "validate_region": _VALIDATE,
        "validate_relation": _VALIDATE,
        "validate_task": _VALIDATE,
        "validate_with_data": _VALIDATE,
    }

    def __init__(self, config: str | LabelConfig) -> None:
        parsed = config if isinstance(config, LabelConfig) else LabelConfig.cached(config)
        self._xml = parsed.xml
        self._objects = {name: _object(obj) for name, obj in parsed.objects.items()}
        self._controls = {
            name: _control(control, self._objects) for name, control in parsed.controls.items()
        }

    @property
    def config(self) -> str:
        """The labeling config XML."""
        return self._xml

    @property
    def controls(self) -> list[ControlTag]:
        """The controls in document order."""
        return list(self._controls.values())

    @property
    def objects(self) -> list[ObjectTag]:
        """The objects in document order."""
        return list(self._objects.values())

    @property
    def labels(self) -> list[dict[str, LabelTag]]:
        """One ``{label: LabelTag}`` per control that has labels (iterate it for the names)."""
        return [dict(c.labels_attrs) for c in self._controls.values() if c.labels_attrs]

    @property
    def control_tags(self) -> set[str]:
        """The controls' names."""
        return set(self._controls)

    @property
    def object_tags(self) -> set[str]:
        """The objects' names."""
        return set(self._objects)

    def get_tag(self, name: str) -> ControlTag | ObjectTag:
        """The control or object called ``name``.

        Raises:
            UnsupportedConfig: neither exists.
        """
        tag = self._controls.get(name) or self._objects.get(name)
        if tag is None:
            known = ", ".join(map(repr, [*self._controls, *self._objects])) or "none"
            raise UnsupportedConfig(f"The labeling config has no tag named {name!r} ({known}).")
        return tag

    def get_control(self, name: str | None = None) -> ControlTag:
        """The control called ``name``, or the only one when ``name`` is ``None``.

        Raises:
            UnsupportedConfig: no such control, or several and no ``name``.
        """
        return _pick("the labeling config's controls", self.controls, name)

    get_output = get_control

    def get_object(self, name: str | None = None) -> ObjectTag:
        """The object called ``name``, or the only one when ``name`` is ``None``.

        Raises:
            UnsupportedConfig: no such object, or several and no ``name``.
        """
        return _pick("the labeling config's objects", self.objects, name)

    def find_tags(
        self,
        tag_type: str | None = None,
        match_fn: Callable[[ControlTag | ObjectTag], bool] | None = None,
    ) -> list[ControlTag | ObjectTag]:
        """Tags of a kind (``"controls"``/``"outputs"``, ``"objects"``/``"inputs"``, default
        both, objects first) that ``match_fn`` accepts."""
        kinds: dict[str | None, list[ControlTag | ObjectTag]] = {
            "controls": [*self.controls],
            "outputs": [*self.controls],
            "objects": [*self.objects],
            "inputs": [*self.objects],
        }
        both: list[ControlTag | ObjectTag] = [*self.objects, *self.controls]
        tags = kinds.get(tag_type, both)
        return [tag for tag in tags if match_fn is None or match_fn(tag)]

    @property
    def ner_tags(self) -> list[ControlTag | ObjectTag]:
        """``Labels`` and ``HyperTextLabels`` controls."""
        return self.find_tags("controls", lambda t: t.tag.lower() in ("labels", "hypertextlabels"))

    @property
    def image_tags(self) -> list[ControlTag | ObjectTag]:
        """``Image`` objects."""
        return self.find_tags("objects", lambda t: t.tag.lower() == "image")

    def get_first_tag_occurence(
        self,
        control_type: TagType,
        object_type: TagType,
        name_filter: NameFilter | None = None,
        to_name_filter: NameFilter | None = None,
    ) -> tuple[str, str, str]:
        """``(from_name, to_name, value)`` of the first control of ``control_type`` that
        labels an object of ``object_type``; ``value`` is the object's data key without ``$``.

        Types compare case-insensitively and may be tuples; the filters get the control's and
        the object's name, lowercased (as in the SDK).

        Raises:
            ValueError: no such pair; the message lists the config's controls.
        """
        for control in self._controls.values():
            if not control.match(control_type, name_filter_fn=name_filter):
                continue
            for obj in control.objects:
                if obj.match(object_type, to_name_filter_fn=to_name_filter):
                    return control.name, obj.name, obj.value_name
        found = ", ".join(f"{c.tag} {c.name!r}" for c in self._controls.values()) or "none"
        raise ValueError(
            f"No {control_type} control labeling a {object_type} object in the labeling config"
            f" (its controls: {found})."
        )
