"""HyperText: the text Label Studio's offsets count in an HTML document, and its XPaths.

The LS editor renders a ``HyperText`` value after removing ``<script>`` and ``<iframe>``
elements and comments, and counts *global offsets* over the rendered DOM in document order:
the characters (code points) of every text node, and one character for every ``<br>``. A
region also names its first and last text node by an XPath from the rendered root
(``/p[2]/b[1]/text()[1]``: element names lowercased, each step numbered among the siblings of
the same name) with code-point offsets into those nodes, and stores the global offsets as
``globalOffsets``.

The document is parsed with html5lib, which implements the HTML5 parsing algorithm browsers
use, so implied end tags and misnested markup give the tree LS sees.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.dom import Node

__all__ = ["HtmlDocument", "TextNode"]

#: Elements LS's sanitiser drops together with their content.
_DROPPED = frozenset({"script", "iframe"})


@dataclass(frozen=True)
class TextNode:
    """A text node of the rendered document: its XPath and its global offsets."""

    xpath: str
    start: int
    end: int


@dataclass(frozen=True)
class HtmlDocument:
    """An HTML document as LS counts it.

    Attributes:
        text: the characters global offsets index: text nodes in document order, ``"\\n"``
            for each ``<br>``; ``text[start:end]`` is a region's text.
        nodes: the text nodes, in document order.
    """

    text: str
    nodes: tuple[TextNode, ...]

    @classmethod
    def parse(cls, html: str) -> HtmlDocument:
        """Parse an HTML document or fragment (what a task's HyperText field holds)."""
        import html5lib

        document = html5lib.parse(html, treebuilder="dom", namespaceHTMLElements=False)
        body = document.getElementsByTagName("body")[0]
        _sanitise(body)
        parts: list[str] = []
        nodes: list[TextNode] = []
        position = 0
        # (node, its XPath); iterative, so deeply nested markup cannot exhaust the stack.
        stack: list[tuple[Any, str]] = [(body, "")]
        while stack:
            node, path = stack.pop()
            if node.nodeType == Node.TEXT_NODE:
                text = node.data
                nodes.append(TextNode(path, position, position + len(text)))
                parts.append(text)
                position += len(text)
                continue
            if node.nodeName.lower() == "br":
                parts.append("\n")
                position += 1
            children: list[tuple[Any, str]] = []
            counters: dict[str, int] = {}
            for child in node.childNodes:
                step = "text()" if child.nodeType == Node.TEXT_NODE else child.nodeName.lower()
                counters[step] = counters.get(step, 0) + 1
                children.append((child, f"{path}/{step}[{counters[step]}]"))
            stack.extend(reversed(children))
        return cls("".join(parts), tuple(nodes))

    def locate(self, start: int, end: int) -> dict[str, Any] | None:
        """LS's value fields for the span ``text[start:end]``; ``None`` if no text node holds
        its first or last character (a span made only of ``<br>`` line breaks)."""
        starts = [node.start for node in self.nodes]
        first = self._node_at(bisect.bisect_right(starts, start) - 1, start, inclusive_end=False)
        last = self._node_at(bisect.bisect_left(starts, end) - 1, end, inclusive_end=True)
        if first is None or last is None:
            return None
        return {
            "start": first.xpath,
            "startOffset": start - first.start,
            "end": last.xpath,
            "endOffset": end - last.start,
            "globalOffsets": {"start": start, "end": end},
        }

    def offsets(self, value: Mapping[str, Any]) -> tuple[int, int] | None:
        """``(start, end)`` in :attr:`text` of an LS HyperText region's value.

        ``globalOffsets`` when present, else the XPaths and node offsets; ``None`` when
        neither points into this document.
        """
        spans = value.get("globalOffsets")
        if isinstance(spans, Mapping):
            found = self._checked(_int(spans.get("start")), _int(spans.get("end")))
            if found is not None:
                return found
        by_path = {node.xpath: node for node in self.nodes}
        first, last = by_path.get(str(value.get("start"))), by_path.get(str(value.get("end")))
        start_offset, end_offset = _int(value.get("startOffset")), _int(value.get("endOffset"))
        if first is None or last is None or start_offset is None or end_offset is None:
            return None
        return self._checked(first.start + start_offset, last.start + end_offset)

    def _checked(self, start: int | None, end: int | None) -> tuple[int, int] | None:
        if start is None or end is None or not 0 <= start < end <= len(self.text):
            return None
        return start, end

    def _node_at(self, index: int, position: int, *, inclusive_end: bool) -> TextNode | None:
        # Several nodes may touch `position` (empty ones, or one ending where the next starts):
        # the start of a span belongs to the node it begins in, the end to the node it ends in.
        while 0 <= index < len(self.nodes):
            node = self.nodes[index]
            inside = (
                node.start < position <= node.end
                if inclusive_end
                else node.start <= position < node.end
            )
            if inside:
                return node
            if node.start > position:
                return None
            index += 1
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sanitise(root: Any) -> None:
    """Remove what LS's sanitiser removes, then merge the text nodes that become adjacent."""
    stack = [root]
    while stack:
        node = stack.pop()
        for child in list(node.childNodes):
            if child.nodeType == Node.COMMENT_NODE or (
                child.nodeType == Node.ELEMENT_NODE and child.nodeName.lower() in _DROPPED
            ):
                node.removeChild(child)
            elif child.nodeType == Node.ELEMENT_NODE:
                stack.append(child)
    root.normalize()
