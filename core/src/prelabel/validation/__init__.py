"""Checks prediction results against the labeling config, with the rules Label Studio applies.

LS 1.23.2 validates predictions with label_studio_sdk 2.1.2's ``LabelInterface`` (when its
prediction-validation flag is on; otherwise it stores anything silently and the editor chokes
on it later, protocol §6.1), and its editor reads them with stricter rules of its own. These
functions encode both, written from LS's documented formats and source:

* each item: ``from_name`` a control, ``to_name`` an object among the control's ``toName``,
  ``type`` the control's result type, ``value`` of that type's shape (``_values``), labels
  the control's (any label for labels from task data), ``score`` in [0, 1];
* with the whole ``result`` list: per-region results share a region's id and repeat its
  value, split-format ``labels`` sit beside their image tool's region, relations join ids
  of the list (``_links``);
* with the task's ``data``: a ``Text`` span's ``text`` is the code points its offsets cover,
  and labels from task data are the task's.

Where the editor and the SDK disagree, results must satisfy both: ``Pairwise`` results point
``to_name`` at an object (the SDK refuses the editor's own name there). One SDK defect is not
reproduced: for a ``<Chat>`` that carries ``toName`` the SDK expects results of type ``chat``,
while the editor writes ``chatmessage`` for every Chat; ``chatmessage`` is required here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prelabel.config import Control, LabelConfig
from prelabel.validation._links import (
    Groups,
    link_problems,
    regions_by_id,
    relation_problems,
    split_partner,
)
from prelabel.validation._values import GEOMETRY, LABEL_KEYS, value_problems

__all__ = ["region_problems", "result_problems"]

_REQUIRED = ("from_name", "to_name", "type", "value")


def region_problems(
    item: Mapping[str, Any],
    config: LabelConfig,
    *,
    result: Sequence[Mapping[str, Any]] | None = None,
    data: Mapping[str, Any] | None = None,
) -> list[str]:
    """What is wrong with one LS result item, as readable sentences (empty if nothing).

    Args:
        item: one item of a prediction's ``result``.
        config: the project's labeling config.
        result: the whole ``result`` list the item belongs to; without it the rules between
            items (ids, per-region results, relations) are not checked.
        data: the task's ``data``; without it span texts and labels from task data are not
            compared with the task.
    """
    return _problems(item, config, None if result is None else regions_by_id(result), data)


def result_problems(
    result: Sequence[Mapping[str, Any]],
    config: LabelConfig,
    data: Mapping[str, Any] | None = None,
) -> list[str]:
    """What is wrong with a whole ``result`` list, each problem prefixed by its item's index."""
    if isinstance(result, str | bytes) or not isinstance(result, Sequence):
        return ["result must be a list"]
    groups = regions_by_id([item for item in result if isinstance(item, Mapping)])
    problems = []
    for index, item in enumerate(result):
        if not isinstance(item, Mapping):
            problems.append(f"result[{index}]: must be an object, got {item!r}")
            continue
        found = _problems(item, config, groups, data)
        problems += [f"result[{index}]: {problem}" for problem in found]
    return problems


def _problems(
    item: Mapping[str, Any],
    config: LabelConfig,
    groups: Groups | None,
    data: Mapping[str, Any] | None,
) -> list[str]:
    if item.get("type") == "relation":
        return relation_problems(item, groups) if groups is not None else []
    missing = [key for key in _REQUIRED if key not in item]
    if missing:
        return [f"{', '.join(missing)} missing"]
    control = config.controls.get(str(item["from_name"]))
    if control is None:
        return [f"from_name {item['from_name']!r} is not a control of the labeling config"]
    problems: list[str] = []
    to_name, kind = item["to_name"], str(item["type"])
    if to_name not in control.to_name or to_name not in config.objects:
        problems.append(
            f"to_name {to_name!r} is not an object in {control.name}'s toName {control.to_name}"
        )
    if kind != control.type:
        problems.append(f"type {kind!r} does not match control {control.name} ({control.type})")
    value = item["value"]
    if not isinstance(value, Mapping):
        return [*problems, "value must be an object"]
    score = item.get("score")
    if score is not None and (
        not isinstance(score, int | float) or isinstance(score, bool) or not 0.0 <= score <= 1.0
    ):
        problems.append(f"score {score!r} is outside [0, 1]")
    problems += _shape_problems(item, kind, value, control, groups)
    problems += _label_problems(kind, value, control)
    if kind in ("brushlabels", "brush") or (kind == "labels" and "rle" in value):
        problems += _brush_size_problems(item, value)
    if groups is not None:
        problems += link_problems(item, config, groups, data)
    return problems


def _shape_problems(
    item: Mapping[str, Any],
    kind: str,
    value: Mapping[str, Any],
    control: Control,
    groups: Groups | None,
) -> list[str]:
    if kind == "labels" and "start" not in value:
        # Split format: the labels of an image tool's region repeat its geometry.
        partner = split_partner(item, groups) if groups is not None else None
        shapes = [partner] if partner else [k for k in GEOMETRY if not GEOMETRY[k](value, control)]
        if not shapes:
            return ["value needs start/end (a span) or an image region's geometry"]
        return GEOMETRY[shapes[0]](value, control)
    return value_problems(kind, value, control)


def _label_problems(kind: str, value: Mapping[str, Any], control: Control) -> list[str]:
    key = LABEL_KEYS.get(kind)
    if key is None:
        return []
    labels = value.get(key)
    if labels is None and kind == "videorectangle":
        return []
    if not isinstance(labels, list) or not labels:
        return [f"value.{key} must be a non-empty list of labels"]
    unknown = [label for label in labels if not control.accepts_label(label)]
    if not unknown or kind == "videorectangle":
        # A VideoRectangle's labels belong to the Labels control beside it, not to itself.
        return []
    return [f"labels {unknown} are not in {control.name}'s labels {list(control.label_names)}"]


def _brush_size_problems(item: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    width, height = item.get("original_width"), item.get("original_height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return ["brush regions need original_width and original_height (the mask's size)"]
    rle = value.get("rle")
    if isinstance(rle, list) and len(rle) >= 4 and all(b in range(256) for b in rle[:4]):
        count = int.from_bytes(bytes(rle[:4]), "big")
        if count != width * height * 4:
            return [f"the mask holds {count} values, not {width}x{height}x4 (RGBA of the image)"]
    return []
