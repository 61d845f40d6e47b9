"""The shape of each result type's ``value``, as Label Studio 1.23.2 accepts it.

From label_studio_sdk 2.1.2's value models (the prediction validation LS runs) and the LS
editor's region models, which are stricter in places: percentages are 0..100 (the SDK has
upper bounds only), an unrotated box stays inside the image, and a label list is not empty
(the editor drops empty ones). Numbers must be JSON numbers, never booleans or strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from prelabel.config import Control

__all__ = ["LABEL_KEYS", "value_problems"]

# Round-off slack for values computed in pixels and stored in percent.
TOLERANCE = 1e-6
_BOX_KEYS = ("x", "y", "width", "height")

Check = Callable[[Mapping[str, Any], Control], list[str]]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _within(value: Mapping[str, Any], key: str, high: float, *, required: bool = True) -> list[str]:
    if key not in value:
        return [f"value.{key} is missing"] if required else []
    number = value[key]
    if not _number(number) or not -TOLERANCE <= number <= high + TOLERANCE:
        return [f"value.{key} = {number!r} is not a number in [0, {high:g}]"]
    return []


def _box(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = [p for key in _BOX_KEYS for p in _within(value, key, 100.0)]
    problems += _within(value, "rotation", 360.0, required=False)
    if problems or value.get("rotation"):
        # A rotated box may reach past an edge, as long as each number stays in range.
        return problems
    for corner, side in (("x", "width"), ("y", "height")):
        if value[corner] + value[side] > 100.0 + 1e-3:
            problems.append(f"{corner} + {side} exceeds 100")
    return problems


def _polygon(value: Mapping[str, Any], control: Control) -> list[str]:
    points = value.get("points")
    if not isinstance(points, list) or len(points) < 3:
        return ["value.points must be a list of at least 3 [x, y] points"]
    for point in points:
        if not (
            isinstance(point, list | tuple)
            and len(point) == 2
            and all(_number(c) and -TOLERANCE <= c <= 100 + TOLERANCE for c in point)
        ):
            return [f"polygon point {point!r} is not an [x, y] percentage pair"]
    return []


def _keypoint(value: Mapping[str, Any], control: Control) -> list[str]:
    return _within(value, "x", 100.0) + _within(value, "y", 100.0)


def _ellipse(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = _keypoint(value, control)
    problems += _within(value, "radiusX", 50.0) + _within(value, "radiusY", 50.0)
    return problems + _within(value, "rotation", 360.0, required=False)


def _brush(value: Mapping[str, Any], control: Control) -> list[str]:
    rle = value.get("rle")
    if value.get("format") != "rle":
        return [f"value.format must be 'rle', got {value.get('format')!r}"]
    if not (isinstance(rle, list) and rle and all(_integer(b) and 0 <= b <= 255 for b in rle)):
        return ["value.rle must be a non-empty list of bytes (0..255)"]
    return []


def _span(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = []
    for key in ("start", "end"):
        if not (_number(value.get(key)) or isinstance(value.get(key), str)):
            problems.append(f"value.{key} must be a number or a string, got {value.get(key)!r}")
    for key in ("startOffset", "endOffset"):
        if key in value and not (_integer(value[key]) and value[key] >= 0):
            problems.append(f"value.{key} must be an integer >= 0, got {value[key]!r}")
    if "text" in value and not isinstance(value["text"], str):
        problems.append(f"value.text must be a string, got {value['text']!r}")
    return problems


def _timeseries(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = _span(value, control)
    if not isinstance(value.get("instant"), bool):
        problems.append(f"value.instant must be true or false, got {value.get('instant')!r}")
    return problems


def _timeline(value: Mapping[str, Any], control: Control) -> list[str]:
    ranges = value.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        return ["value.ranges must be a non-empty list of {start, end} frames"]
    for item in ranges:
        if not (
            isinstance(item, Mapping) and _number(item.get("start")) and _number(item.get("end"))
        ):
            return [f"range {item!r} needs numeric start and end frames"]
        if item["start"] > item["end"]:
            return [f"range {item!r} ends before it starts"]
    return []


def _video_rectangle(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = []
    if not _integer(value.get("framesCount")):
        problems.append(f"value.framesCount must be an integer, got {value.get('framesCount')!r}")
    if not _number(value.get("duration")):
        problems.append(f"value.duration must be a number, got {value.get('duration')!r}")
    sequence = value.get("sequence")
    if not isinstance(sequence, list) or not sequence:
        return [*problems, "value.sequence must be a non-empty list of keyframes"]
    for key in sequence:
        if (
            not isinstance(key, Mapping)
            or not _integer(key.get("frame"))
            or not _number(key.get("time"))
        ):
            return [*problems, f"keyframe {key!r} needs an integer frame and a numeric time"]
        found = [p for name in _BOX_KEYS for p in _within(key, name, 100.0)]
        if found:
            return [*problems, f"keyframe {key['frame']}: {'; '.join(found)}"]
    return problems


def _ocr(value: Mapping[str, Any], control: Control) -> list[str]:
    problems = _box(value, control)
    if "pageIndex" in value and not (_integer(value["pageIndex"]) and value["pageIndex"] >= 0):
        problems.append(f"value.pageIndex must be an integer >= 0, got {value['pageIndex']!r}")
    if "ocrtext" in value and not isinstance(value["ocrtext"], str):
        problems.append(f"value.ocrtext must be a string, got {value['ocrtext']!r}")
    return problems


def _choices(value: Mapping[str, Any], control: Control) -> list[str]:
    picked = value.get("choices")
    if not _strings(picked) or not picked:
        return [f"value.choices must be a non-empty list of strings, got {picked!r}"]
    if len(picked) > 1 and not control.multiple:
        return [f"{control.name} is single-choice but got {len(picked)} choices"]
    return []


def _taxonomy(value: Mapping[str, Any], control: Control) -> list[str]:
    paths = value.get("taxonomy")
    if not isinstance(paths, list) or not paths or not all(_strings(p) and p for p in paths):
        return [
            f"value.taxonomy must be a non-empty list of paths (lists of strings), got {paths!r}"
        ]
    if control.labels and not control.dynamic_labels:
        known = set(control.taxonomy_paths())
        unknown = [path for path in paths if tuple(path) not in known]
        if unknown:
            return [f"taxonomy paths {unknown} are not nodes of {control.name}"]
    return []


def _rating(value: Mapping[str, Any], control: Control) -> list[str]:
    stars, raw_max = value.get("rating"), control.attrs.get("maxRating", "").strip()
    maximum = int(raw_max) if raw_max.isdigit() else 5
    if not (isinstance(stars, int) and _integer(stars) and 0 <= stars <= maximum):
        return [f"value.rating must be an integer in [0, {maximum}] (maxRating), got {stars!r}"]
    return []


def _number_value(value: Mapping[str, Any], control: Control) -> list[str]:
    return (
        []
        if _number(value.get("number"))
        else [f"value.number must be a number, got {value.get('number')!r}"]
    )


def _textarea(value: Mapping[str, Any], control: Control) -> list[str]:
    return (
        []
        if _strings(value.get("text"))
        else [f"value.text must be a list of strings, got {value.get('text')!r}"]
    )


def _datetime(value: Mapping[str, Any], control: Control) -> list[str]:
    return [] if isinstance(value.get("datetime"), str) else ["value.datetime must be a string"]


def _pairwise(value: Mapping[str, Any], control: Control) -> list[str]:
    selected = value.get("selected")
    return (
        []
        if selected in ("left", "right")
        else [f"value.selected must be 'left' or 'right', got {selected!r}"]
    )


def _ranker(value: Mapping[str, Any], control: Control) -> list[str]:
    columns = value.get("ranker")
    if not isinstance(columns, Mapping) or not all(_strings(ids) for ids in columns.values()):
        return [f"value.ranker must map columns to lists of item ids, got {columns!r}"]
    known = {*control.buckets, "_"} if control.buckets else {control.name}
    unknown = sorted(set(columns) - known)
    return [f"ranker columns {unknown} are not {sorted(known)}"] if unknown else []


def _chat(value: Mapping[str, Any], control: Control) -> list[str]:
    message = value.get("chatmessage")
    if not (
        isinstance(message, Mapping)
        and isinstance(message.get("role"), str)
        and isinstance(message.get("content"), str)
    ):
        return [f"value.chatmessage must be {{role, content}} strings, got {message!r}"]
    if "createdAt" in message and not _integer(message["createdAt"]):
        return [f"chatmessage.createdAt must be an integer (ms), got {message['createdAt']!r}"]
    return []


_CHECKS: dict[str, Check] = {
    "rectangle": _box,
    "rectanglelabels": _box,
    "polygon": _polygon,
    "polygonlabels": _polygon,
    "keypoint": _keypoint,
    "keypointlabels": _keypoint,
    "ellipse": _ellipse,
    "ellipselabels": _ellipse,
    "brush": _brush,
    "brushlabels": _brush,
    "labels": _span,
    "hypertextlabels": _span,
    "paragraphlabels": _span,
    "timeserieslabels": _timeseries,
    "timelinelabels": _timeline,
    "videorectangle": _video_rectangle,
    "ocrlabels": _ocr,
    "choices": _choices,
    "taxonomy": _taxonomy,
    "rating": _rating,
    "number": _number_value,
    "textarea": _textarea,
    "datetime": _datetime,
    "pairwise": _pairwise,
    "ranker": _ranker,
    "chatmessage": _chat,
}
#: Geometry checks for ``labels`` results that label an image tool's region (split format).
GEOMETRY: dict[str, Check] = {
    kind: _CHECKS[kind] for kind in ("rectangle", "polygon", "keypoint", "ellipse", "brush")
}
#: Where each result type keeps its labels (``videorectangle`` keeps a ``Labels``' under
#: ``labels``).
LABEL_KEYS = {kind: kind for kind in _CHECKS if kind.endswith("labels")} | {
    "choices": "choices",
    "videorectangle": "labels",
}


def value_problems(kind: str, value: Mapping[str, Any], control: Control) -> list[str]:
    """What is wrong with ``value`` for a result of type ``kind`` (``[]`` for unknown types)."""
    check = _CHECKS.get(kind)
    return check(value, control) if check else []
