"""``self.label_interface``: label-studio-sdk's ``LabelInterface`` names over prelabel's parser.

Models written for Label Studio's ML SDK read their labeling config through
``self.label_interface``. This module offers the part of that API such models use, with the
SDK's names and return shapes, built on :class:`prelabel.config.LabelConfig` (prelabel does not
depend on label-studio-sdk). An SDK name it does not offer raises :class:`NotSupported`, whose
message names the prelabel equivalent; any other unknown name is a plain ``AttributeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from prelabel.compat._tags import (
    SAMPLES_INSTEAD,
    VALIDATE_INSTEAD,
    ControlTag,
    LabelTag,
    NameFilter,
    NotSupported,
    ObjectTag,
    SDKNames,
    TagType,
    control_tag,
    object_tag,
    pick,
)
from prelabel.config import LabelConfig
from prelabel.errors import UnsupportedConfig

__all__ = ["ControlTag", "LabelInterface", "LabelTag", "NotSupported", "ObjectTag"]


class LabelInterface(SDKNames):
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
        "generate_complete_sample_task": SAMPLES_INSTEAD,
        "generate_sample_annotation": SAMPLES_INSTEAD,
        "generate_sample_prediction": SAMPLES_INSTEAD,
        "generate_sample_task": SAMPLES_INSTEAD,
        "get_all_control_tag_tuples": "use label_interface.controls",
        "get_all_labels": "use label_interface.labels",
        "get_all_object_tag_names": "use label_interface.object_tags",
        "get_task_from_labeling_config": "keep sample tasks in your tests",
        "is_valid": VALIDATE_INSTEAD,
        "is_video_object_tracking": "use find_tags(match_fn=lambda tag: tag.tag == 'VideoRectangle')",
        "load_task": "read task['data'][obj.value_name], media through self.get_local_path(url, task_id=task['id'])",
        "parse": "use prelabel.config.LabelConfig.parse(xml)",
        "parse_config_to_json": "use self.parsed_label_config",
        "pdf_tags": "use find_tags('objects', lambda tag: tag.tag.lower() == 'pdf')",
        "to_json_schema": "build the schema from label_interface.controls and their labels",
        "validate": VALIDATE_INSTEAD,
        "validate_annotation": VALIDATE_INSTEAD,
        "validate_prediction": VALIDATE_INSTEAD,
        "validate_region": VALIDATE_INSTEAD,
        "validate_relation": VALIDATE_INSTEAD,
        "validate_task": VALIDATE_INSTEAD,
        "validate_with_data": VALIDATE_INSTEAD,
    }

    def __init__(self, config: str | LabelConfig) -> None:
        parsed = config if isinstance(config, LabelConfig) else LabelConfig.cached(config)
        self._xml = parsed.xml
        self._objects = {name: object_tag(obj) for name, obj in parsed.objects.items()}
        self._controls = {
            name: control_tag(control, self._objects) for name, control in parsed.controls.items()
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
        return pick("the labeling config's controls", self.controls, name)

    get_output = get_control

    def get_object(self, name: str | None = None) -> ObjectTag:
        """The object called ``name``, or the only one when ``name`` is ``None``.

        Raises:
            UnsupportedConfig: no such object, or several and no ``name``.
        """
        return pick("the labeling config's objects", self.objects, name)

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
