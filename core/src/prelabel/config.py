"""Label Studio labeling-config parser: controls, objects, labels, and model-name mapping.

Classifies elements the way Label Studio does (protocol §12): an element with ``name`` and
``toName`` is a control (``Filter`` excepted), one with ``name`` and ``value``/``valueList`` is
an object, and ``Label``/``Choice`` elements belong to their nearest control ancestor. A
``<Chat>`` is both: an object holding the conversation and a control whose results are its
``chatmessage`` messages (with or without ``toName``, as label_studio_sdk's ``LabelInterface``
reads it). Everything else (``View``, ``Header``, ``Style``, HTML) is layout and ignored.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from xml.etree.ElementTree import Element, ParseError

# defusedxml ships no type hints (see the mypy overrides in pyproject.toml); fromstring returns an Element.
import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from prelabel._label_map import CoverageSource, LabelCoverage, LabelMap
from prelabel._tags import Control, Label, ObjectTag
from prelabel.errors import BadRequest, UnsupportedConfig

__all__ = [
    "Control",
    "CoverageSource",
    "Label",
    "LabelConfig",
    "LabelCoverage",
    "LabelMap",
    "ObjectTag",
]

_LABEL_TAGS = frozenset({"Label", "Choice"})
# Tags that are their own object and control (from_name == to_name), like the SDK's Chat.
_SELF_REFERENCING = frozenset({"chat"})


def _frozen(attrs: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(attrs))


@dataclass
class _LabelDraft:
    attrs: dict[str, str]
    children: list[_LabelDraft] = field(default_factory=list)


@dataclass
class _ControlDraft:
    tag: str
    attrs: dict[str, str]
    to_name: str
    roots: list[_LabelDraft] = field(default_factory=list)
    every: list[_LabelDraft] = field(default_factory=list)  # all labels, document order
    buckets: list[str] = field(default_factory=list)  # a Ranker's <Bucket> names


# The nearest control ancestor, and the list its next label goes into.
_Owner = tuple[_ControlDraft, list[_LabelDraft]]


def _is_control(tag: str, attrs: Mapping[str, str]) -> bool:
    # Filter has name and toName too, but it filters another control's labels.
    return bool(attrs.get("name") and attrs.get("toName")) and tag != "Filter"


def _is_object(attrs: Mapping[str, str]) -> bool:
    return bool(attrs.get("name") and (attrs.get("value") or attrs.get("valueList")))


def _parse_xml(xml: str) -> Element:
    if not xml or not xml.strip():
        raise BadRequest(
            "The labeling config is empty; set up the project's labeling interface in Label "
            "Studio first."
        )
    try:
        root: Element = DefusedET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        # With forbid_dtd every entity or external reference needs a DTD, so this is the cause.
        raise BadRequest(
            "The labeling config has a <!DOCTYPE> declaration; it is refused because DTD "
            "entities can expand without bound, and Label Studio configs never need one."
        ) from exc
    except ParseError as exc:
        raise BadRequest(f"The labeling config is not well-formed XML: {exc}.") from exc
    if root.tag != "View":
        raise BadRequest(
            f"The labeling config's root element is <{root.tag}>; Label Studio configs "
            "start with <View>."
        )
    return root


def _walk(root: Element) -> tuple[list[_ControlDraft], list[ObjectTag], list[str]]:
    """Collect controls (with their label trees), objects and element names in document order."""
    controls: list[_ControlDraft] = []
    objects: list[ObjectTag] = []
    names: list[str] = []  # one per named element, so a Chat's name counts once
    # Iterative, so a deeply nested config cannot exhaust the Python stack.
    stack: list[tuple[Element, _Owner | None]] = [(root, None)]
    while stack:
        elem, owner = stack.pop()
        attrs = dict(elem.attrib)
        self_referencing = elem.tag.lower() in _SELF_REFERENCING and bool(attrs.get("name"))
        is_control = self_referencing or _is_control(elem.tag, attrs)
        # A control's value (dynamic labels, "$options") is not an object's.
        is_object = self_referencing or (not is_control and _is_object(attrs))
        if is_object:
            value = attrs.get("value") or attrs.get("valueList") or ""
            objects.append(ObjectTag(elem.tag, attrs["name"], value, _frozen(attrs)))
        if is_control:
            draft = _ControlDraft(elem.tag, attrs, attrs.get("toName") or attrs["name"])
            controls.append(draft)
            owner = (draft, draft.roots)
        if is_control or is_object:
            names.append(attrs["name"])
        elif elem.tag == "Bucket" and owner is not None and attrs.get("name"):
            owner[0].buckets.append(attrs["name"])
        elif elem.tag in _LABEL_TAGS and owner is not None and attrs.get("value"):
            # The LS editor requires a value; a label without one could never be stored.
            label = _LabelDraft(attrs)
            owner[1].append(label)
            owner[0].every.append(label)
            owner = (owner[0], label.children)
        stack.extend((child, owner) for child in reversed(elem))
    return controls, objects, names


def _build_control(draft: _ControlDraft, objects: Mapping[str, ObjectTag]) -> Control:
    built: dict[int, Label] = {}
    # Drafts are in document order, so in reverse every child is built before its parent.
    for label in reversed(draft.every):
        children = tuple(built[id(child)] for child in label.children)
        alias = label.attrs.get("alias") or None
        built[id(label)] = Label(label.attrs["value"], alias, _frozen(label.attrs), children)
    chosen = draft.roots if draft.tag.lower() == "taxonomy" else draft.every
    to_name = tuple(part.strip() for part in draft.to_name.split(",") if part.strip())
    return Control(
        tag=draft.tag,
        name=draft.attrs["name"],
        to_name=to_name,
        attrs=_frozen(draft.attrs),
        labels=tuple(built[id(label)] for label in chosen),
        objects=tuple(objects[name] for name in to_name if name in objects),
        buckets=tuple(draft.buckets),
    )


class _ParseCache:
    """Parsed configs, most recently used first, bounded by the size of their XML.

    Bounded by bytes, not entries: configs come from callers, and 256 configs of 4 MB each
    held a gigabyte. A parsed config takes about twice its XML in memory.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, LabelConfig] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, xml: str) -> LabelConfig:
        with self._lock:
            found = self._entries.get(xml)
            if found is not None:
                self._entries.move_to_end(xml)
                return found
        parsed = LabelConfig.parse(xml)  # outside the lock: parsing a big config takes a while
        if len(xml) > self.max_bytes // 4:
            return parsed  # one config may not push out all the others
        with self._lock:
            if xml not in self._entries:
                self._entries[xml] = parsed
                self._bytes += len(xml)
            while self._bytes > self.max_bytes:
                old, _ = self._entries.popitem(last=False)
                self._bytes -= len(old)
        return parsed

    @property
    def size(self) -> int:
        """Bytes of XML held."""
        return self._bytes


#: 32 MB of XML: hundreds of real configs (a few KB each), a few dozen huge ones.
_CACHE = _ParseCache(max_bytes=32 * 1024 * 1024)


@dataclass(frozen=True)
class LabelConfig:
    """A parsed labeling config; build it with :meth:`parse` or :meth:`cached`.

    Two configs are equal when their XML is.

    Attributes:
        xml: the config as LS sent it.
        hash: SHA-256 hex digest of :attr:`xml`.
        controls: controls by name, in document order.
        objects: objects by name, in document order.
    """

    xml: str
    hash: str
    controls: Mapping[str, Control] = field(compare=False)
    objects: Mapping[str, ObjectTag] = field(compare=False)

    @classmethod
    def parse(cls, xml: str) -> LabelConfig:
        """Parse a labeling config.

        Raises:
            BadRequest: the XML is empty, malformed, declares a DTD or entities, does not
                have a ``<View>`` root, or repeats a control or object name.
        """
        drafts, object_list, element_names = _walk(_parse_xml(xml))
        names = Counter(element_names)
        repeated = sorted(name for name, count in names.items() if count > 1)
        if repeated:
            raise BadRequest(
                f"The labeling config uses the name(s) {', '.join(map(repr, repeated))} more "
                "than once; every control and object needs a unique name."
            )
        objects = {obj.name: obj for obj in object_list}
        controls = {d.attrs["name"]: _build_control(d, objects) for d in drafts}
        return cls(
            xml=xml,
            hash=hashlib.sha256(xml.encode()).hexdigest(),
            controls=MappingProxyType(controls),
            objects=MappingProxyType(objects),
        )

    @classmethod
    def cached(cls, xml: str) -> LabelConfig:
        """Like :meth:`parse`, memoised for recent configs (32 MB of XML at most)."""
        return _CACHE.get(xml)

    def controls_of(self, *tags: str) -> list[Control]:
        """Controls whose tag is one of ``tags`` (case-insensitive), in document order."""
        wanted = {tag.lower() for tag in tags}
        return [control for control in self.controls.values() if control.tag.lower() in wanted]

    def control(self, name: str) -> Control:
        """The control called ``name``.

        Raises:
            UnsupportedConfig: there is no such control.
        """
        try:
            return self.controls[name]
        except KeyError:
            known = ", ".join(map(repr, self.controls)) or "none"
            raise UnsupportedConfig(
                f"The labeling config has no control named {name!r} (its controls: {known})."
            ) from None

    def data_keys(self) -> set[str]:
        """The task-data keys the objects read (``{"image"}`` for ``value="$image"``)."""
        return {obj.value_key for obj in self.objects.values() if obj.value_key is not None}
