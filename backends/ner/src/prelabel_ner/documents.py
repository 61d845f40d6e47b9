"""A task's text for a control, its labelled spans as LS stores them, and LS regions for spans.

``Labels`` on ``Text``: offsets are Python ``str`` indices (code points) into the task's text,
end exclusive, and ``text == data[start:end]`` (protocol §9.2). ``HyperTextLabels`` (or
``Labels``) on ``HyperText``: see :mod:`prelabel_ner.hypertext`. With ``valueType="url"`` the text is fetched
through core's media resolver (an LS upload, a local file, a cloud URI, http(s)).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prelabel import Control, MediaError, MediaResolver, ObjectTag, Region
from prelabel import results as R
from prelabel_ner.hypertext import HtmlDocument

__all__ = ["SUPPORTED", "Document", "Gold", "read_document"]

log = logging.getLogger(__name__)

#: (control type, object tag) pairs this backend fills, lowercased.
SUPPORTED = frozenset(
    {("labels", "text"), ("labels", "hypertext"), ("hypertextlabels", "hypertext")}
)

#: An annotated span: ``(start, end, label)`` in code points of :attr:`Document.text`.
Gold = tuple[int, int, str]


@dataclass(frozen=True)
class Document:
    """The text a control labels.

    Attributes:
        text: what offsets index (for HyperText, the rendered text LS counts).
        html: the parsed HTML of a HyperText object, else ``None``.
    """

    text: str
    html: HtmlDocument | None = None

    def region(
        self, control: Control, start: int, end: int, label: str, score: float
    ) -> Region | None:
        """The LS region labelling ``text[start:end]``; ``None`` if HyperText cannot place it."""
        if self.html is None:
            return R.span(
                control, start=start, end=end, source_text=self.text, label=label, score=score
            )
        covered = self.text[start:end]
        where = self.html.locate(start, end)
        if where is None:
            return None
        region = R.hypertext_span(
            control,
            start=where["start"],
            end=where["end"],
            start_offset=where["startOffset"],
            end_offset=where["endOffset"],
            text=covered,
            label=label,
            score=score,
        )
        return dataclasses.replace(
            region, value={**region.value, "globalOffsets": where["globalOffsets"]}
        )

    def gold(self, control: Control, result: Sequence[Mapping[str, Any]]) -> list[Gold]:
        """The spans an annotation's ``result`` labels for ``control`` (one per label)."""
        found: list[Gold] = []
        for item in result:
            if item.get("from_name") != control.name or item.get("type") != control.type:
                continue
            value = item.get("value")
            if not isinstance(value, Mapping):
                continue
            offsets = self._offsets(value)
            labels = value.get(control.type) or value.get("labels") or []
            if offsets is None or not isinstance(labels, list):
                continue
            found.extend(
                (*offsets, str(label)) for label in labels if control.has_label(str(label))
            )
        return found

    def _offsets(self, value: Mapping[str, Any]) -> tuple[int, int] | None:
        if self.html is not None:
            return self.html.offsets(value)
        start, end = value.get("start"), value.get("end")
        if not (isinstance(start, int) and isinstance(end, int)) or bool in (
            type(start),
            type(end),
        ):
            return None
        return (start, end) if 0 <= start < end <= len(self.text) else None


def read_document(task: Mapping[str, Any], obj: ObjectTag, media: MediaResolver) -> Document | None:
    """The task's document for ``obj``; ``None`` when the task has no usable text.

    A fetch that fails is logged (the message names the URL, the cause and the fix).
    """
    data = task.get("data")
    value = data.get(obj.value_key or "") if isinstance(data, Mapping) else None
    if not isinstance(value, str):
        return None
    if obj.attrs.get("valueType", obj.attrs.get("valuetype", "")).lower() == "url":
        try:
            value = media.read_bytes(value, task_id=task.get("id")).decode(
                "utf-8", errors="replace"
            )
        except MediaError as exc:
            log.warning("ner: task %s: %s", task.get("id"), exc)
            return None
    if obj.tag.lower() == "hypertext":
        html = HtmlDocument.parse(value)
        return Document(html.text, html) if html.text else None
    return Document(value) if value else None
