"""Validation shared by the region builders; every failure is a ``ValueError`` (a backend bug)."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

from prelabel.config import Control, ObjectTag

# Slack for float round-off in pixel-to-percent conversions (0.01 px on a 10,000 px image);
# values within it of the 0..100 range are clamped, anything further out is a bug.
PERCENT_TOLERANCE = 1e-4


def require_tag(
    control: Control, builder: str, labelled: str, unlabelled: str | None = None
) -> None:
    """Check that ``control`` is one of the tags ``builder`` makes results for."""
    allowed = (labelled,) if unlabelled is None else (labelled, unlabelled)
    if control.tag not in allowed:
        raise ValueError(
            f"{builder}() makes results for {' or '.join(allowed)} controls; "
            f"control {control.name!r} is a {control.tag}"
        )


def check_label(control: Control, label: str) -> str:
    """Check that LS accepts ``label`` on the control (any non-empty one for dynamic labels)."""
    if not control.accepts_label(label):
        if control.dynamic_labels:
            raise ValueError(
                f"label {label!r} of {control.tag} {control.name!r} (labels from task data) "
                "must be a non-empty string"
            )
        allowed = ", ".join(map(repr, control.label_names)) or "none"
        raise ValueError(
            f"label {label!r} is not a label of {control.tag} {control.name!r} (allowed: {allowed})"
        )
    return label


def labels_value(control: Control, label: str | None) -> dict[str, list[str]]:
    """The ``{"<type>": [label]}`` part of a value: required on ``*Labels`` tags, else absent."""
    if control.type.endswith("labels"):
        if label is None:
            raise ValueError(f"{control.tag} {control.name!r} needs a label; got label=None")
        return {control.type: [check_label(control, label)]}
    if label is not None:
        raise ValueError(
            f"{control.tag} {control.name!r} has no labels; pass label=None, got {label!r}"
        )
    return {}


def check_score(score: float | None) -> float | None:
    """``None``, or ``score`` as a float in [0, 1]."""
    if score is None:
        return None
    value = finite(score, "score")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {value}")
    return value


def finite(value: float, what: str) -> float:
    """``value`` as a finite Python float (numpy scalars are not JSON-serialisable)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    return number


def integer(value: int, what: str, minimum: int = 0) -> int:
    """``value`` as a Python int that is at least ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    try:
        # operator.index takes numpy integers too, and refuses floats.
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {number}")
    return number


def percent(value: float, what: str) -> float:
    """``value`` as a percentage in [0, 100], clamping round-off within the tolerance."""
    number = finite(value, what)
    if not -PERCENT_TOLERANCE <= number <= 100.0 + PERCENT_TOLERANCE:
        raise ValueError(f"{what} must be a percentage in 0..100, got {number}")
    return min(max(number, 0.0), 100.0)


def degrees(rotation: float) -> float:
    """A rotation in degrees, normalised to [0, 360)."""
    normalised = finite(rotation, "rotation") % 360.0
    # A tiny negative angle wraps to exactly 360.0 in floating point.
    return 0.0 if normalised == 360.0 else normalised


def positive(value: float, what: str) -> float:
    """``value`` as a finite float > 0."""
    number = finite(value, what)
    if number <= 0.0:
        raise ValueError(f"{what} must be > 0, got {number}")
    return number


def image_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` in pixels, both positive integers."""
    if len(size) != 2:
        raise ValueError(f"image_size must be (width, height), got {size!r}")
    return integer(size[0], "image width", 1), integer(size[1], "image height", 1)


def strings(values: Sequence[str], what: str) -> list[str]:
    """A non-empty list of strings; a bare ``str`` is refused (it would split into characters)."""
    if isinstance(values, str):
        raise ValueError(f"{what} must be a list of strings, got the string {values!r}")
    items = list(values)
    if not items:
        raise ValueError(f"{what} must not be empty")
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{what} must hold strings, got {item!r}")
    return items


def attr(control: Control, key: str) -> str | None:
    """An attribute of the control, also under the lowercased name the LS editor writes."""
    return control.attrs.get(key, control.attrs.get(key.lower()))


def resolve_to_name(control: Control, to_name: str | None) -> str:
    """``to_name`` if the control points to it, else the control's first ``toName``."""
    if to_name is None:
        return control.to_name[0]
    if to_name not in control.to_name:
        raise ValueError(
            f"to_name {to_name!r} is not a toName of {control.tag} {control.name!r} "
            f"(its toName: {', '.join(map(repr, control.to_name))})"
        )
    return to_name


def target_object(control: Control, to_name: str | None, builder: str, *tags: str) -> ObjectTag:
    """The object the result goes to, checked to be one of ``tags`` (case-insensitive).

    The region's units depend on the object (characters of a ``Text``, seconds of an
    ``Audio``), so a builder refuses objects whose units it does not write.
    """
    name = resolve_to_name(control, to_name)
    found = next((obj for obj in control.objects if obj.name == name), None)
    if found is None or found.tag.lower() not in {tag.lower() for tag in tags}:
        what = f"a {found.tag}" if found else "not an object of the labeling config"
        raise ValueError(
            f"{builder}() makes results on {' or '.join(tags)} objects; {control.tag} "
            f"{control.name!r} points to {name!r}, which is {what}"
        )
    return found
