"""Rules between the items of one ``result`` list: ids, per-region results, relations, spans.

LS groups result items by ``id`` into regions: a ``perRegion`` control's result must share the
id of a region in the same list (and repeat its value, or the editor reads it as a
whole-object classification), a split-format ``labels`` result needs its image tool's
geometry beside it, and a relation must join two ids of the list. With the task's data, a
``Text`` span's ``text`` must be the code points it covers (the offsets LS stores) and labels
from task data must be the task's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from prelabel.config import Control, LabelConfig
from prelabel.validation._values import LABEL_KEYS

__all__ = [
    "CLASSIFICATIONS",
    "Groups",
    "link_problems",
    "regions_by_id",
    "relation_problems",
    "split_partner",
]

Item = Mapping[str, Any]
#: A result list's region items (relations aside) by id, built once per list.
Groups = Mapping[Any, list[Item]]

#: Result types that describe a region (or the whole object) rather than being one.
CLASSIFICATIONS = frozenset({"choices", "textarea", "rating", "number", "taxonomy", "datetime"})
_SPLIT_PARTNERS = frozenset({"rectangle", "polygon", "keypoint", "ellipse", "brush"})


def split_partner(item: Item, groups: Groups) -> str | None:
    """The type of the unlabelled image tool whose region a ``labels`` item labels, if any."""
    for other in groups.get(item.get("id"), []):
        kind = str(other.get("type", ""))
        if other is not item and kind in _SPLIT_PARTNERS:
            return kind
    return None


def regions_by_id(result: Sequence[Item]) -> Groups:
    """The region items of ``result`` (relations aside) by id."""
    grouped: dict[Any, list[Item]] = defaultdict(list)
    for item in result:
        if isinstance(item, Mapping) and item.get("type") != "relation" and "id" in item:
            grouped[item["id"]].append(item)
    return grouped


def _attached_problems(item: Item, control: Control, groups: Groups) -> list[str]:
    value = item.get("value")
    own = {"text" if control.type == "textarea" else control.type}  # the control's own key
    repeats = isinstance(value, Mapping) and bool(set(value) - own)
    if not control.per_region:
        if repeats and item.get("type") in CLASSIFICATIONS:
            return [f"{control.name} is not perRegion but its result carries a region's value"]
        return []
    if not repeats or item.get("id") is None:
        return [
            f'{control.name} has perRegion="true": its result needs the id of the region it '
            "describes and that region's value (LS reads it as a whole-object result otherwise)"
        ]
    partners = [
        other
        for other in groups.get(item["id"], [])
        if other is not item and other.get("type") not in CLASSIFICATIONS
    ]
    if not partners:
        return [f"{control.name} result {item['id']!r} describes no region of this result list"]
    return []


def _span_text_problems(item: Item, config: LabelConfig, data: Mapping[str, Any]) -> list[str]:
    obj = config.objects.get(str(item.get("to_name")))
    value = item.get("value")
    if obj is None or obj.tag.lower() != "text" or not isinstance(value, Mapping):
        return []
    text = data.get(obj.value_key) if obj.value_key else obj.value
    start, end = value.get("start"), value.get("end")
    if not isinstance(text, str) or not isinstance(start, int) or not isinstance(end, int):
        return []
    if not 0 <= start < end <= len(text):
        return [f"span {start}..{end} is outside the {len(text)}-character text"]
    if "text" in value and value["text"] != text[start:end]:
        return [
            f"span {start}..{end} covers {text[start:end]!r}, not {value['text']!r} "
            "(offsets are code points, as Python str indices)"
        ]
    return []


def _task_label_problems(item: Item, control: Control, data: Mapping[str, Any]) -> list[str]:
    value = item.get("value")
    key = LABEL_KEYS.get(str(item.get("type")), "choices")
    labels = value.get(key) if isinstance(value, Mapping) else None
    if not control.dynamic_labels or not isinstance(labels, list):
        return []
    offered = set(control.task_label_names(data))
    unknown = [label for label in labels if label not in offered]
    return (
        [f"labels {unknown} are not among the task's labels for {control.name}"] if unknown else []
    )


def link_problems(
    item: Item, config: LabelConfig, groups: Groups, data: Mapping[str, Any] | None
) -> list[str]:
    """Problems of one item with the rest of its result list (and the task's data)."""
    control = config.controls.get(str(item.get("from_name")))
    if control is None:
        return []
    problems = _attached_problems(item, control, groups)
    group = groups.get(item.get("id"), [])
    if len({str(other.get("to_name")) for other in group}) > 1:
        problems.append(f"results with id {item.get('id')!r} are on different objects")
    value = item.get("value")
    spanless = isinstance(value, Mapping) and "start" not in value
    if item.get("type") == "labels" and spanless and split_partner(item, groups) is None:
        problems.append(
            f"labels result {item.get('id')!r} has no start/end and labels no region of "
            "an image tool (rectangle, polygon, ellipse, keypoint or brush) with its id"
        )
    if data is not None:
        problems += _span_text_problems(item, config, data)
        problems += _task_label_problems(item, control, data)
    return problems


def relation_problems(item: Item, groups: Groups) -> list[str]:
    """A relation joins two ids of the result list, in a direction LS knows."""
    problems = []
    if item.get("direction") not in ("left", "right", "bi"):
        problems.append(f"relation direction {item.get('direction')!r} is not left, right or bi")
    for end in ("from_id", "to_id"):
        if item.get(end) not in groups:
            problems.append(f"relation {end} {item.get(end)!r} is no region of this result list")
    return problems
