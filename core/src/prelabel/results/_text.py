"""Builders for labelled text: spans of ``Text``, selections in ``HyperText``, ``Paragraphs``.

Offsets are Python ``str`` indices (Unicode code points) wherever LS stores code points: the
editor converts every ``Text``/``HyperText`` selection to code points before saving it (its
``fixCodePointsInRange``), so an emoji counts once, as in Python. ``Paragraphs`` are the
exception: their editor counts JavaScript string lengths (UTF-16 code units) inside a phrase,
so :func:`paragraph_span` takes Python offsets and converts them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["hypertext_span", "offsets_from_utf16", "paragraph_span", "span"]


def offsets_from_utf16(text: str, start: int, end: int) -> tuple[int, int]:
    """Convert UTF-16 offsets into ``text`` (JavaScript's, some tokenizers') to Python offsets.

    For callers whose model or tool counts UTF-16 code units, where every character outside
    the Basic Multilingual Plane (most emoji) counts twice; :func:`span` takes Python offsets.

    Args:
        text: the whole text the offsets refer to.
        start: UTF-16 offset of the first character.
        end: UTF-16 offset after the last character, ``start <= end``.

    Returns:
        ``(start, end)`` as indices into the Python ``str``.

    Raises:
        ValueError: an offset is out of range or falls inside a surrogate pair.
    """
    start = _checks.integer(start, "start")
    end = _checks.integer(end, "end")
    if start > end:
        raise ValueError(f"need start <= end, got start={start}, end={end}")
    positions: dict[int, int] = {}
    units = 0
    for index, char in enumerate(text):
        positions[units] = index
        units += 2 if ord(char) > 0xFFFF else 1
    positions[units] = len(text)
    for what, offset in (("start", start), ("end", end)):
        if offset not in positions:
            where = "past the end" if offset > units else "inside a surrogate pair"
            raise ValueError(f"UTF-16 {what} offset {offset} is {where} of a {units}-unit text")
    return positions[start], positions[end]


def _utf16_offset(text: str, offset: int) -> int:
    return len(text[:offset].encode("utf-16-le")) // 2


def span(
    control: Control,
    *,
    start: int,
    end: int,
    label: str,
    text: str | None = None,
    source_text: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled span of a ``Text`` object, for a ``Labels`` control (NER).

    Args:
        control: a ``Labels`` control on a ``Text`` object.
        start: Python ``str`` index of the first character (code points, as LS stores them).
        end: index after the last character, ``> start``.
        label: one of the control's labels.
        text: the covered text, ``end - start`` characters long; taken from ``source_text``
            when omitted.
        source_text: the whole task text; when given, ``text`` must be
            ``source_text[start:end]``. Pass one of ``text`` and ``source_text``.
        score: confidence in [0, 1].
        to_name: the ``Text`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``labels`` region with value ``{start, end, text, labels}``.
    """
    _checks.require_tag(control, "span", "Labels")
    _checks.target_object(control, to_name, "span", "Text")
    start = _checks.integer(start, "start")
    end = _checks.integer(end, "end")
    if start >= end:
        raise ValueError(f"need start < end, got start={start}, end={end}")
    if source_text is not None:
        if not isinstance(source_text, str) or end > len(source_text):
            raise ValueError(f"span {start}..{end} is past the end of source_text")
        covered = source_text[start:end]
        if text is not None and text != covered:
            raise ValueError(f"text {text!r} is not source_text[{start}:{end}] ({covered!r})")
        text = covered
    if not isinstance(text, str):
        raise ValueError(f"pass text= (the covered text) or source_text=, got text={text!r}")
    if len(text) != end - start:
        raise ValueError(
            f"text {text!r} is {len(text)} characters long but the span {start}..{end} covers "
            f"{end - start}; offsets are Python str indices (see offsets_from_utf16)"
        )
    value = {"start": start, "end": end, "text": text, **_checks.labels_value(control, label)}
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)


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
    """A labelled selection in a ``HyperText`` object, for ``HyperTextLabels`` or ``Labels``.

    Args:
        control: a ``HyperTextLabels`` or ``Labels`` control on a ``HyperText`` object.
        start: XPath of the node where the selection starts, e.g. ``"/p[1]/text()[1]"``.
        end: XPath of the node where it ends.
        start_offset: Python ``str`` index into the ``start`` node's text.
        end_offset: index into the ``end`` node's text (exclusive).
        text: the selected text.
        label: one of the control's labels.
        score: confidence in [0, 1].
        to_name: the ``HyperText`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{start, end, startOffset, endOffset, text, <type>}``.
    """
    _checks.require_tag(control, "hypertext_span", "HyperTextLabels", "Labels")
    _checks.target_object(control, to_name, "hypertext_span", "HyperText")
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
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)


def paragraph_span(
    control: Control,
    *,
    phrases: Sequence[str],
    start: int,
    end: int,
    start_offset: int,
    end_offset: int,
    label: str,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled selection across phrases of a ``Paragraphs`` object, for ``ParagraphLabels``.

    Args:
        control: a ``ParagraphLabels`` control.
        phrases: the text of every phrase of the task (each item's ``textKey`` value).
        start: index of the phrase where the selection starts.
        end: index of the phrase where it ends, ``>= start``.
        start_offset: Python ``str`` index into ``phrases[start]``.
        end_offset: index into ``phrases[end]`` (exclusive).
        label: one of the control's labels.
        score: confidence in [0, 1].
        to_name: the ``Paragraphs`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``paragraphlabels`` region with value ``{start, end, startOffset, endOffset, text,
        paragraphlabels}``: phrase indices as strings and offsets in UTF-16 code units, as the
        LS editor saves them; ``text`` is the selected text, phrases joined without separator.
    """
    _checks.require_tag(control, "paragraph_span", "ParagraphLabels")
    _checks.target_object(control, to_name, "paragraph_span", "Paragraphs")
    texts = list(phrases)
    if isinstance(phrases, str) or not all(isinstance(phrase, str) for phrase in texts):
        raise ValueError("phrases must be a list of the phrases' texts")
    start = _checks.integer(start, "start")
    end = _checks.integer(end, "end")
    start_offset = _checks.integer(start_offset, "start_offset")
    end_offset = _checks.integer(end_offset, "end_offset")
    if not start <= end < len(texts):
        raise ValueError(f"need 0 <= start <= end < {len(texts)} phrases, got {start}..{end}")
    if start_offset > len(texts[start]) or end_offset > len(texts[end]):
        raise ValueError(
            f"offsets {start_offset}..{end_offset} are past the end of their phrases "
            f"({len(texts[start])} and {len(texts[end])} characters)"
        )
    if start == end:
        selected = texts[start][start_offset:end_offset]
    else:
        selected = texts[start][start_offset:] + "".join(texts[start + 1 : end])
        selected += texts[end][:end_offset]
    if not selected:
        raise ValueError(f"the selection {start}:{start_offset}..{end}:{end_offset} is empty")
    value = {
        "start": str(start),
        "end": str(end),
        "startOffset": _utf16_offset(texts[start], start_offset),
        "endOffset": _utf16_offset(texts[end], end_offset),
        "text": selected,
        **_checks.labels_value(control, label),
    }
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)
