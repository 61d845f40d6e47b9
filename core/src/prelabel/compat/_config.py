"""``parsed_label_config``: LS's dict form of a labeling config, built by prelabel's parser."""

from __future__ import annotations

from typing import Any

from prelabel.config import LabelConfig

__all__ = ["parse_config"]


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
