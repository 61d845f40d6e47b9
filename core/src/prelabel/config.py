"""Label Studio labeling-config parser: controls, objects, labels, and model-name mapping.

Classifies elements the way Label Studio does (protocol §12): an element with ``name`` and
``toName`` is a control (``Filter`` excepted), one with ``name`` and ``value``/``valueList`` is
an object, and ``Label``/``Choice`` elements belong to their nearest control ancestor.
Everything else (``View``, ``Header``, ``Style``, HTML) is layout and ignored.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from xml.etree.ElementTree import Element, ParseError

# defusedxml ships no type hints (see the mypy overrides in pyproject.toml); fromstring returns an Element.
import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from prelabel.errors import BadRequest, UnsupportedConfig

__all__ = ["Control", "Label", "LabelConfig", "LabelMap", "ObjectTag"]

logger = logging.getLogger(__name__)

_LABEL_TAGS = frozenset({"Label", "Choice"})
# LS treats "$key" (no comma or space) as a task-data reference, anything else as a literal.
_VARIABLE = re.compile(r"\$([^\s,]+)")


def _frozen(attrs: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(attrs))


def _attr(attrs: Mapping[str, str], key: str) -> str:
    # The LS editor lowercases attribute names, so templates also write e.g. "perregion".
    return attrs.get(key, attrs.get(key.lower(), "")).strip()


def _is_true(attrs: Mapping[str, str], key: str) -> bool:
    return _attr(attrs, key).lower() == "true"


@dataclass(frozen=True)
class Label:
    """A ``<Label>`` or ``<Choice>`` of a control.

    Attributes:
        value: the ``value`` attribute.
        alias: the ``alias`` attribute, ``None`` when absent or empty.
        attrs: all XML attributes.
        children: nested ``<Choice>`` elements (Taxonomy and nested Choices), in order.
    """

    value: str
    alias: str | None
    attrs: Mapping[str, str] = field(hash=False)
    children: tuple[Label, ...] = ()

    @property
    def name(self) -> str:
        """What LS stores in results: the alias if set, else the value."""
        return self.alias or self.value

    @property
    def predicted_values(self) -> tuple[str, ...]:
        """Model class names declared by ``predicted_values="car,truck"``."""
        raw = self.attrs.get("predicted_values", "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class ObjectTag:
    """A data object the annotator labels (``Image``, ``Text``, ``Audio``…).

    Attributes:
        tag: the element name as written, e.g. ``"Image"``.
        name: the ``name`` attribute that controls point to with ``toName``.
        value: the raw ``value`` (``valueList`` when ``value`` is absent), e.g. ``"$image"``.
        attrs: all XML attributes.
    """

    tag: str
    name: str
    value: str
    attrs: Mapping[str, str] = field(hash=False)

    @property
    def value_key(self) -> str | None:
        """The task-data key: ``"image"`` for ``"$image"``; ``None`` for a literal value."""
        match = _VARIABLE.fullmatch(self.value)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Control:
    """A control tag: what produces results (``Choices``, ``RectangleLabels``, ``TextArea``…).

    Attributes:
        tag: the element name as written, e.g. ``"RectangleLabels"``.
        name: the ``name`` attribute (a result's ``from_name``).
        to_name: the names in ``toName``, in order.
        attrs: all XML attributes.
        labels: the control's labels in document order; for ``Taxonomy`` only the top-level
            choices (the tree is in their ``children`` and :meth:`taxonomy_paths`).
        objects: the objects named in ``to_name`` that exist in the config, in that order.
    """

    tag: str
    name: str
    to_name: tuple[str, ...]
    attrs: Mapping[str, str] = field(hash=False)
    labels: tuple[Label, ...] = ()
    objects: tuple[ObjectTag, ...] = ()

    @property
    def type(self) -> str:
        """The LS result ``type``: the tag lowercased (``"rectanglelabels"``)."""
        return self.tag.lower()

    @property
    def label_names(self) -> tuple[str, ...]:
        """The names LS stores for the labels, in order."""
        return tuple(label.name for label in self.labels)

    @property
    def multiple(self) -> bool:
        """Whether several labels may be chosen (``choice="multiple"``, or a Taxonomy)."""
        return self.type == "taxonomy" or _attr(self.attrs, "choice") == "multiple"

    @property
    def model_attrs(self) -> Mapping[str, str]:
        """Backend options set on the control: attributes starting with ``model_``."""
        return {key: value for key, value in self.attrs.items() if key.startswith("model_")}

    @property
    def smart(self) -> bool:
        """Whether the control takes interactive input (``smart`` or ``smartOnly``)."""
        return _is_true(self.attrs, "smart") or _is_true(self.attrs, "smartOnly")

    @property
    def per_region(self) -> bool:
        """Whether results attach to regions of another control (``perRegion="true"``)."""
        return _is_true(self.attrs, "perRegion")

    def taxonomy_paths(self) -> tuple[tuple[str, ...], ...]:
        """Every root-to-node path of a Taxonomy's choices, depth first; empty for others."""
        if self.type != "taxonomy":
            return ()
        paths: list[tuple[str, ...]] = []
        stack: list[tuple[tuple[str, ...], Label]]
        stack = [((label.name,), label) for label in reversed(self.labels)]
        while stack:
            path, label = stack.pop()
            paths.append(path)
            stack.extend(((*path, child.name), child) for child in reversed(label.children))
        return tuple(paths)

    def has_label(self, name: str) -> bool:
        """Whether one of :attr:`labels` has this LS name."""
        return name in self.label_names

    def object(self, name: str | None = None) -> ObjectTag:
        """The first object this control points to, or the one called ``name``.

        Raises:
            UnsupportedConfig: the control points to no such object.
        """
        for obj in self.objects:
            if name is None or obj.name == name:
                return obj
        wanted = "any object" if name is None else f"an object named {name!r}"
        raise UnsupportedConfig(
            f"Control {self.name!r} ({self.tag}) has toName={','.join(self.to_name)!r}, "
            f"which does not point to {wanted} in the labeling config."
        )


@dataclass
class _LabelDraft:
    attrs: dict[str, str]
    children: list[_LabelDraft] = field(default_factory=list)


@dataclass
class _ControlDraft:
    tag: str
    attrs: dict[str, str]
    roots: list[_LabelDraft] = field(default_factory=list)
    every: list[_LabelDraft] = field(default_factory=list)  # all labels, document order


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


def _walk(root: Element) -> tuple[list[_ControlDraft], list[ObjectTag]]:
    """Collect controls (with their label trees) and objects in document order."""
    controls: list[_ControlDraft] = []
    objects: list[ObjectTag] = []
    # Iterative, so a deeply nested config cannot exhaust the Python stack.
    stack: list[tuple[Element, _Owner | None]] = [(root, None)]
    while stack:
        elem, owner = stack.pop()
        attrs = dict(elem.attrib)
        if _is_control(elem.tag, attrs):
            draft = _ControlDraft(elem.tag, attrs)
            controls.append(draft)
            owner = (draft, draft.roots)
        elif _is_object(attrs):
            value = attrs.get("value") or attrs["valueList"]
            objects.append(ObjectTag(elem.tag, attrs["name"], value, _frozen(attrs)))
        elif elem.tag in _LABEL_TAGS and owner is not None and attrs.get("value"):
            # The LS editor requires a value; a label without one could never be stored.
            label = _LabelDraft(attrs)
            owner[1].append(label)
            owner[0].every.append(label)
            owner = (owner[0], label.children)
        stack.extend((child, owner) for child in reversed(elem))
    return controls, objects


def _build_control(draft: _ControlDraft, objects: Mapping[str, ObjectTag]) -> Control:
    built: dict[int, Label] = {}
    # Drafts are in document order, so in reverse every child is built before its parent.
    for label in reversed(draft.every):
        children = tuple(built[id(child)] for child in label.children)
        alias = label.attrs.get("alias") or None
        built[id(label)] = Label(label.attrs["value"], alias, _frozen(label.attrs), children)
    chosen = draft.roots if draft.tag.lower() == "taxonomy" else draft.every
    to_name = tuple(part.strip() for part in draft.attrs["toName"].split(",") if part.strip())
    return Control(
        tag=draft.tag,
        name=draft.attrs["name"],
        to_name=to_name,
        attrs=_frozen(draft.attrs),
        labels=tuple(built[id(label)] for label in chosen),
        objects=tuple(objects[name] for name in to_name if name in objects),
    )


@lru_cache(maxsize=256)
def _parse_cached(xml: str) -> LabelConfig:
    return LabelConfig.parse(xml)


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
        drafts, object_list = _walk(_parse_xml(xml))
        names = Counter([d.attrs["name"] for d in drafts] + [o.name for o in object_list])
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
        """Like :meth:`parse`, memoised for the 256 most recent configs."""
        return _parse_cached(xml)

    def controls_of(self, *tags: str) -> list[Control]:
        """Controls whose tag is one of ``tags`` (case-insensitive), in document order."""
        wanted = {tag.lower() for tag in tags}
        return [control for control in self.controls.values() if control.type in wanted]

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


@dataclass(frozen=True)
class LabelMap:
    """How a model's class names map to a control's LS labels; build with :meth:`build`.

    Attributes:
        mapping: model name to LS label name, in input order.
        unmapped: model names with no label, in input order.
        label_names: the control's LS label names the map was built against.
    """

    mapping: Mapping[str, str] = field(hash=False)
    unmapped: tuple[str, ...]
    label_names: tuple[str, ...]

    @classmethod
    def build(cls, control: Control, model_names: Iterable[str]) -> LabelMap:
        """Map each model name to a label of ``control``, first rule that matches wins.

        1. a label whose ``predicted_values`` contains the name;
        2. a label whose name (alias, else value) equals it;
        3. the same, ignoring case;
        4. ``predicted_values``, ignoring case.

        When several labels match one rule, the first in document order wins.
        """
        exact_predicted: dict[str, str] = {}
        folded_predicted: dict[str, str] = {}
        folded_names: dict[str, str] = {}
        for label in control.labels:
            folded_names.setdefault(label.name.casefold(), label.name)
            for predicted in label.predicted_values:
                exact_predicted.setdefault(predicted, label.name)
                folded_predicted.setdefault(predicted.casefold(), label.name)
        names = set(control.label_names)

        mapping: dict[str, str] = {}
        unmapped: dict[str, None] = {}  # an ordered set
        for model_name in model_names:
            folded = model_name.casefold()
            target = (
                exact_predicted.get(model_name)
                or (model_name if model_name in names else None)
                or folded_names.get(folded)
                or folded_predicted.get(folded)
            )
            if target is None:
                unmapped[model_name] = None
            else:
                mapping[model_name] = target
        if unmapped:
            logger.debug(
                "control %r: model names without a label (ignored): %s",
                control.name,
                ", ".join(unmapped),
            )
        return cls(MappingProxyType(mapping), tuple(unmapped), control.label_names)

    def get(self, model_name: str) -> str | None:
        """The LS label name for ``model_name``, or ``None`` when it has none."""
        return self.mapping.get(model_name)

    def __contains__(self, model_name: object) -> bool:
        return model_name in self.mapping

    def __len__(self) -> int:
        return len(self.mapping)

    @property
    def unreachable(self) -> tuple[str, ...]:
        """LS label names that no model name maps to, in label order."""
        reached = set(self.mapping.values())
        return tuple(name for name in self.label_names if name not in reached)
