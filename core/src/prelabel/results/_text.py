"""Builders for labelled text spans (``Labels`` on ``Text``, ``HyperTextLabels``)."""

from __future__ import annotations

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._prediction import Region

__all__ = ["hypertext_span", "span", "utf16_offsets"]


def utf16_offsets(text: str, start: int, end: int) -> tuple[int, int]:
    """Convert code-point offsets into ``text`` to the UTF-16 offsets LS uses.

    The LS editor indexes text as a JavaScript string, in UTF-16 code units: every character
    outside the Basic Multilingual Plane (most emoji) counts twice, so Python offsets after one
    are off by one per such character.

    Args:
        text: the whole task text the offsets refer to.
        start: code-point offset of the first character, ``0 <= start <= end``.
        end: code-point offset after the last character, ``end <= len(text)``.

    Returns:
        ``(start, end)`` in UTF-16 code units.
    """
    start = _checks.integer(start, "start")
    end = _checks.integer(end, "end")
    if not start <= end <= len(text):
        raise ValueError(f"need 0 <= start <= end <= {len(text)}, got start={start}, end={end}")
    head = _utf16_length(text[:start])
    return head, head + _utf16_length(text[start:end])


def span(
    control: Control,
    *,
    start: int,
    end: int,
    text: str,
    label: str,
    source_text: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled span of a ``Text`` object, for a ``Labels`` control (NER).

    Offsets are end-exclusive. Without ``source_text`` they are taken as LS offsets (UTF-16
    code units, see :func:`utf16_offsets`) and ``text`` must be that long. With
    ``source_text`` (the whole task text) they are Python string offsets into it, ``text``
    must equal ``source_text[start:end]``, and they are converted for LS: pass it whenever the
    text may hold emoji or other characters outside the BMP.

    Args:
        control: a ``Labels`` control.
        start: offset of the first character.
        end: offset after the last character, ``> start``.
        text: the covered text.
        label: one of the control's labels.
        source_text: the whole task text, when ``start``/``end`` are Python offsets into it.
        score: confidence in [0, 1].
        to_name: the ``Text`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``labels`` region with value ``{start, end, text, labels}``.
    """
    _checks.require_tag(control, "span", "Labels")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    start = _checks.integer(start, "start")
    end = _checks.integer(end, "end")
    if start >= end:
        raise ValueError(f"need start < end, got start={start}, end={end}")
    if source_text is None:
        if _utf16_length(text) != end - start:
            raise ValueError(
                f"text {text!r} is {_utf16_length(text)} UTF-16 units long but the span "
                f"{start}..{end} covers {end - start}; pass source_text= to convert Python offsets"
            )
    else:
        converted = utf16_offsets(source_text, start, end)
        if source_text[start:end] != text:
            raise ValueError(
                f"text {text!r} is not source_text[{start}:{end}] ({source_text[start:end]!r})"
            )
        start, end = converted
    value = {"start": start, "end": end, "text": text, **_checks.labels_value(control, label)}
    return _checks.make_region(control, value, score=score, to_name=to_name, region_id=region_id)


def hypertext_span(
    control: Control,
    *,
    start: str,
    end: str,
    start_offset: int,
    end_offset: int,
    text: str,
    label: str,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled selection in a ``HyperText`` object, for a ``HyperTextLabels`` control.

    Args:
        control: a ``HyperTextLabels`` control.
        start: XPath of the node where the selection starts, e.g. ``"/p[1]/text()[1]"``.
        end: XPath of the node where it ends.
        start_offset: character offset into the ``start`` node.
        end_offset: character offset into the ``end`` node (exclusive).
        text: the selected text.
        label: one of the control's labels.
        score: confidence in [0, 1].
        to_name: the ``HyperText`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``hypertextlabels`` region with value
        ``{start, end, startOffset, endOffset, text, hypertextlabels}``.
    """
    _checks.require_tag(control, "hypertext_span", "HyperTextLabels")
    for what, xpath in (("start", start), ("end", end)):
        if not isinstance(xpath, str) or not xpath:
            raise ValueError(f"{what} must be a non-empty XPath string, got {xpath!r}")
    start_offset = _checks.integer(start_offset, "start_offset")
    end_offset = _checks.integer(end_offset, "end_offset")
    if start == end and start_offset >= end_offset:
        raise ValueError(
            f"within one node need start_offset < end_offset, got {start_offset}, {end_offset}"
        )
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    value = {
        "start": start,
        "end": end,
        "startOffset": start_offset,
        "endOffset": end_offset,
        "text": text,
        **_checks.labels_value(control, label),
    }
    return _checks.make_region(control, value, score=score, to_name=to_name, region_id=region_id)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
