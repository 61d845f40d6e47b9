"""Label-config helpers in the shapes ``LabelStudioMLBase`` code expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prelabel.config import LabelConfig

__all__ = ["first_tag_occurence", "parse_config"]


def parse_config(config: LabelConfig) -> dict[str, Any]:
    """LS's ``parsed_label_config`` dict (protocol §4.2), built by the prelabel parser.

    ``{control: {"type", "to_name", "inputs": [{"type", "valueType", "value"}], "labels",
    "labels_attrs"}}``, as in webhook payloads.
    """
    parsed: dict[str, Any] = {}
    for control in config.controls.values():
        parsed[control.name] = {
            "type": control.tag,
            "to_name": list(control.to_name),
            "inputs": [
                {
                    "type": obj.tag,
                    "valueType": obj.attrs.get("valueType"),
                    "value": obj.value_key or obj.value,
                }
                for obj in control.objects
            ],
            "labels": [label.value for label in control.labels],
            "labels_attrs": {label.value: dict(label.attrs) for label in control.labels},
        }
    return parsed


def _matches(tag: str, wanted: str | tuple[str, ...]) -> bool:
    names = (wanted,) if isinstance(wanted, str) else wanted
    return tag.lower() in {name.lower() for name in names}


def first_tag_occurence(
    config: LabelConfig,
    control_type: str | tuple[str, ...],
    object_type: str | tuple[str, ...],
    name_filter: Callable[[str], bool] | None = None,
    to_name_filter: Callable[[str], bool] | None = None,
) -> tuple[str, str, str]:
    """``(from_name, to_name, data key)`` of the first control/object pair of those types.

    Tag types compare case-insensitively; the filters receive the control's and the object's
    ``name``.

    Raises:
        ValueError: no control of ``control_type`` points to an object of ``object_type``.
    """
    for control in config.controls.values():
        if not _matches(control.tag, control_type):
            continue
        if name_filter is not None and not name_filter(control.name):
            continue
        for obj in control.objects:
            if to_name_filter is not None and not to_name_filter(obj.name):
                continue
            if _matches(obj.tag, object_type):
                return control.name, obj.name, obj.value_key or obj.value
    controls = ", ".join(f"{c.tag} {c.name!r}" for c in config.controls.values()) or "none"
    raise ValueError(
        f"No {control_type} control pointing to a {object_type} object in the labeling config"
        f" (its controls: {controls})."
    )
