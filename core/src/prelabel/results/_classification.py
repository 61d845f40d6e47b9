"""Builders for classifications: choices, taxonomy, rating, number and transcriptions.

Each describes the whole object, or, for a control with ``perRegion="true"``, the ``region=``
it is attached to (see :mod:`prelabel.results._attached`).
"""

from __future__ import annotations

from collections.abc import Sequence

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._attached import whole_or_attached
from prelabel.results._prediction import Region

__all__ = ["choices", "number", "rating", "taxonomy", "textarea"]

_DEFAULT_MAX_RATING = 5


def choices(
    control: Control,
    labels: Sequence[str],
    *,
    region: Region | None = None,
    score: float | None = None,
) -> Region:
    """The choices picked, for a ``Choices`` control.

    Args:
        control: a ``Choices`` control.
        labels: the picked choices (LS names: alias, else value; any for choices from task
            data); one unless the control has ``choice="multiple"``.
        region: the region classified, required for (and only for) a ``perRegion`` control.
        score: confidence in [0, 1].

    Returns:
        A ``choices`` region with value ``{"choices": [...]}``.
    """
    _checks.require_tag(control, "choices", "Choices")
    picked = _checks.strings(labels, "labels")
    for label in picked:
        _checks.check_label(control, label)
    if len(set(picked)) != len(picked):
        raise ValueError(f"labels must not repeat, got {picked!r}")
    if len(picked) > 1 and not control.multiple:
        raise ValueError(
            f"Choices {control.name!r} is single-choice; got {len(picked)} labels {picked!r} "
            '(set choice="multiple" on the control to allow several)'
        )
    return whole_or_attached(control, {"choices": picked}, region, score=score, verb="classifies")


def taxonomy(
    control: Control,
    paths: Sequence[Sequence[str]],
    *,
    region: Region | None = None,
    score: float | None = None,
) -> Region:
    """The taxonomy nodes picked, for a ``Taxonomy`` control.

    Args:
        control: a ``Taxonomy`` control.
        paths: each picked node as its path from the root, e.g. ``[["Animal", "Cat"]]``.
        region: the region classified, required for (and only for) a ``perRegion`` control.
        score: confidence in [0, 1].

    Returns:
        A ``taxonomy`` region with value ``{"taxonomy": [[...], ...]}``.
    """
    _checks.require_tag(control, "taxonomy", "Taxonomy")
    if isinstance(paths, str) or not paths:
        raise ValueError(f"paths must be a non-empty list of paths, got {paths!r}")
    known = set(control.taxonomy_paths())
    picked = [_checks.strings(path, "a taxonomy path") for path in paths]
    for path in picked:
        if tuple(path) not in known:
            raise ValueError(
                f"path {path!r} is not a node of Taxonomy {control.name!r} "
                f"(top-level choices: {', '.join(map(repr, control.label_names)) or 'none'})"
            )
    return whole_or_attached(control, {"taxonomy": picked}, region, score=score, verb="classifies")


def rating(
    control: Control, value: int, *, region: Region | None = None, score: float | None = None
) -> Region:
    """A rating, for a ``Rating`` control.

    Args:
        control: a ``Rating`` control.
        value: from 1 to the control's ``maxRating`` (default 5).
        region: the region rated, required for (and only for) a ``perRegion`` control.
        score: confidence in [0, 1].

    Returns:
        A ``rating`` region with value ``{"rating": value}``.
    """
    _checks.require_tag(control, "rating", "Rating")
    raw_max = _checks.attr(control, "maxRating")
    maximum = int(raw_max) if raw_max else _DEFAULT_MAX_RATING
    stars = _checks.integer(value, "rating", minimum=1)
    if stars > maximum:
        raise ValueError(f"rating must be at most {maximum} (maxRating), got {stars}")
    return whole_or_attached(control, {"rating": stars}, region, score=score, verb="rates")


def number(
    control: Control, value: float, *, region: Region | None = None, score: float | None = None
) -> Region:
    """A number, for a ``Number`` control.

    Args:
        control: a ``Number`` control.
        value: within the control's ``min`` and ``max`` when it sets them; an ``int`` stays
            an integer in the JSON.
        region: the region measured, required for (and only for) a ``perRegion`` control.
        score: confidence in [0, 1].

    Returns:
        A ``number`` region with value ``{"number": value}``.
    """
    _checks.require_tag(control, "number", "Number")
    checked = _checks.finite(value, "number")
    low, high = _checks.attr(control, "min"), _checks.attr(control, "max")
    if (low and checked < float(low)) or (high and checked > float(high)):
        raise ValueError(
            f"number must be within the control's bounds (min={low or '-inf'}, "
            f"max={high or 'inf'}), got {checked}"
        )
    amount = value if isinstance(value, int) else checked
    return whole_or_attached(control, {"number": amount}, region, score=score, verb="measures")


def textarea(
    control: Control,
    texts: Sequence[str],
    *,
    region: Region | None = None,
    score: float | None = None,
) -> Region:
    """A transcription, for a ``TextArea`` control.

    Without ``region`` it transcribes the whole object. With ``region`` (for a control with
    ``perRegion="true"``, e.g. OCR) it transcribes that region: the result shares the
    region's id, object and top-level keys, and its value repeats the region's geometry, as
    LS requires to attach it.

    Args:
        control: a ``TextArea`` control.
        texts: the lines of text.
        region: the region transcribed, built by another builder.
        score: confidence in [0, 1].

    Returns:
        A ``textarea`` region with value ``{"text": [...]}`` (plus the geometry per region).
    """
    _checks.require_tag(control, "textarea", "TextArea")
    lines = _checks.strings(texts, "texts")
    return whole_or_attached(control, {"text": lines}, region, score=score, verb="transcribes")
