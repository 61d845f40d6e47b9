"""Checks a prediction's regions against the labeling config (used by the conformance kit).

LS Community stores malformed regions silently and the editor chokes on them later
(protocol §6.1), so prelabel checks them itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from prelabel.config import LabelConfig

__all__ = ["region_problems"]

_PERCENT_KEYS = ("x", "y", "width", "height", "radiusX", "radiusY")
_TOLERANCE = 1e-6


def _labels_of(value: Mapping[str, Any], kind: str) -> list[Any] | None:
    labels = value.get(kind)
    if labels is None and kind.endswith("labels"):
        labels = value.get("labels")
    return labels if isinstance(labels, list) else None


def region_problems(item: Mapping[str, Any], config: LabelConfig) -> list[str]:
    """What is wrong with one LS result item, as readable sentences (empty if nothing)."""
    problems: list[str] = []
    name, kind = item.get("from_name"), item.get("type")
    if kind == "relation":
        return problems
    control = config.controls.get(str(name))
    if control is None:
        return [f"from_name {name!r} is not a control of the labeling config"]
    if item.get("to_name") not in control.to_name:
        problems.append(
            f"to_name {item.get('to_name')!r} is not in {control.name}'s toName {control.to_name}"
        )
    # Per-region TextArea/Choices items repeat a geometry region's id with their own type.
    if kind != control.type:
        problems.append(f"type {kind!r} does not match control {control.name} ({control.type})")
    value = item.get("value")
    if not isinstance(value, Mapping):
        return [*problems, "value must be an object"]
    score = item.get("score")
    if score is not None and (not isinstance(score, int | float) or not 0.0 <= score <= 1.0):
        problems.append(f"score {score!r} is outside [0, 1]")
    labels = _labels_of(value, str(kind))
    if labels is not None and control.labels:
        unknown = [label for label in labels if not control.has_label(str(label))]
        if unknown:
            problems.append(
                f"labels {unknown} are not in {control.name}'s labels {list(control.label_names)}"
            )
    for key in _PERCENT_KEYS:
        v = value.get(key)
        if v is not None and (
            not isinstance(v, int | float)
            or not math.isfinite(v)
            or not -_TOLERANCE <= v <= 100 + _TOLERANCE
        ):
            problems.append(f"value.{key} = {v!r} is not a percentage in [0, 100]")
    if not value.get("rotation") and all(
        isinstance(value.get(k), int | float) for k in ("x", "width")
    ):
        if value["x"] + value["width"] > 100 + 1e-3:
            problems.append("x + width exceeds 100")
        y, height = value.get("y"), value.get("height")
        if (
            isinstance(y, int | float)
            and isinstance(height, int | float)
            and y + height > 100 + 1e-3
        ):
            problems.append("y + height exceeds 100")
    for point in value.get("points") or []:
        if not (
            isinstance(point, list | tuple)
            and len(point) == 2
            and all(
                isinstance(c, int | float) and -_TOLERANCE <= c <= 100 + _TOLERANCE for c in point
            )
        ):
            problems.append(f"polygon point {point!r} is not an [x, y] percentage pair")
            break
    if kind in ("brushlabels", "brush") and not (
        item.get("original_width") and item.get("original_height")
    ):
        problems.append("brush regions need original_width and original_height")
    return problems
