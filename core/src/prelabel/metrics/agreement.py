"""How closely a prediction matches an annotation, in [0, 1].

Used to gate promotion of a newly trained version (champion vs challenger on held-out
annotated tasks) and to measure how much annotators accept pre-annotations. Per control:

* choices / taxonomy — Jaccard similarity of the chosen sets;
* text spans (``Text``, ``HyperText``, ``Paragraphs``) — F1 over exact matches of the offsets
  LS stores (``start``, ``end``, and ``startOffset``/``endOffset`` where present: code points
  for Text, as the builders write them) and the label;
* segments of time (audio seconds, time series, video frames) — F1 over segments matched with
  the same label and overlap (intersection over union) ≥ 0.5;
* rectangles, polygons, keypoints, ellipses (and the labels of an image tool's region, stored
  apart in LS's split format) — F1 over regions matched greedily with the same
  label and IoU ≥ 0.5 (polygons, ellipses and rotated rectangles by bounding box; keypoints by
  distance ≤ 2 %);
* brush masks — IoU of the union of each label's masks, averaged over labels;
* anything else (textarea, rating, number, …) — exact equality of the values.

A task's agreement is the mean over the controls present in either side; two empty sides agree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from prelabel.results.brush import rle_to_mask

__all__ = ["IOU_THRESHOLD", "agreement", "box_iou", "region_box", "region_label"]

IOU_THRESHOLD = 0.5
KEYPOINT_DISTANCE = 2.0  # percent of the image side

Item = Mapping[str, Any]
Box = tuple[float, float, float, float]

_LABEL_KEYS = (
    "labels",
    "rectanglelabels",
    "polygonlabels",
    "keypointlabels",
    "brushlabels",
    "ellipselabels",
    "hypertextlabels",
    "paragraphlabels",
    "timeserieslabels",
    "timelinelabels",
    "ocrlabels",
)
# The offsets that place a text span, as LS stores them.
_SPAN_KEYS = ("start", "end", "startOffset", "endOffset")


def region_label(value: Mapping[str, Any]) -> str:
    """The first label of a region's ``value`` (``""`` when it has none)."""
    for key in _LABEL_KEYS:
        labels = value.get(key)
        if isinstance(labels, list) and labels:
            return str(labels[0])
    return ""


def box_iou(a: Box, b: Box) -> float:
    """IoU of two ``(x, y, width, height)`` boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _pixels_per_percent(item: Item) -> tuple[float, float]:
    """The image's pixels per percent of its width and height (a square without its size)."""
    return float(item.get("original_width") or 100) / 100, float(
        item.get("original_height") or 100
    ) / 100


def region_box(item: Item) -> Box | None:
    """A region's ``(x, y, width, height)`` in %: its box, or the bounding box of its shape.

    A rotated rectangle gives the axis-aligned hull of its corners, rotated clockwise around
    its top-left corner in pixels (protocol §9.2), a rotated ellipse that of its outline,
    rotated around its centre (the image's ``original_width`` and ``original_height``, or a
    square image when the item lacks them).
    """
    value = item.get("value", {})
    if {"x", "y", "width", "height"} <= value.keys():
        x, y = float(value["x"]), float(value["y"])
        w, h = float(value["width"]), float(value["height"])
        degrees = float(value.get("rotation") or 0.0)
        if degrees % 360 == 0:
            return (x, y, w, h)
        angle = math.radians(degrees)
        sx, sy = _pixels_per_percent(item)
        cos, sin = math.cos(angle), math.sin(angle)
        xs, ys = [], []
        for dx, dy in ((0.0, 0.0), (w * sx, 0.0), (w * sx, h * sy), (0.0, h * sy)):
            xs.append(x + (dx * cos - dy * sin) / sx)
            ys.append(y + (dx * sin + dy * cos) / sy)
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    if {"x", "y", "radiusX", "radiusY"} <= value.keys():
        rx, ry = float(value["radiusX"]), float(value["radiusY"])
        angle = math.radians(float(value.get("rotation") or 0.0))
        if angle:  # rotated around its centre: half extents of the rotated ellipse, in pixels
            sx, sy = _pixels_per_percent(item)
            cos, sin = math.cos(angle), math.sin(angle)
            rx, ry = (
                math.hypot(rx * sx * cos, ry * sy * sin) / sx,
                math.hypot(rx * sx * sin, ry * sy * cos) / sy,
            )
        return (float(value["x"]) - rx, float(value["y"]) - ry, 2 * rx, 2 * ry)
    points = value.get("points")
    if isinstance(points, list) and points:
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    return None


def _f1(matches: int, n_pred: int, n_true: int) -> float:
    if n_pred == 0 and n_true == 0:
        return 1.0
    return 2 * matches / (n_pred + n_true)


def _match_regions(pred: Sequence[Item], true: Sequence[Item], keypoints: bool) -> float:
    used: set[int] = set()
    matches = 0
    for p in pred:
        pv = p.get("value", {})
        best, best_j = 0.0, -1
        for j, t in enumerate(true):
            tv = t.get("value", {})
            if j in used or region_label(pv) != region_label(tv):
                continue
            if keypoints:
                dist = float(
                    np.hypot(float(pv["x"]) - float(tv["x"]), float(pv["y"]) - float(tv["y"]))
                )
                quality = 1.0 if dist <= KEYPOINT_DISTANCE else 0.0
            else:
                pb, tb = region_box(p), region_box(t)
                quality = box_iou(pb, tb) if pb and tb else 0.0
            if quality > best:
                best, best_j = quality, j
        if best_j >= 0 and (best >= IOU_THRESHOLD or (keypoints and best > 0)):
            used.add(best_j)
            matches += 1
    return _f1(matches, len(pred), len(true))


def _mask(item: Item) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    value = item.get("value", {})
    w, h = item.get("original_width"), item.get("original_height")
    if value.get("format") != "rle" or not w or not h:
        return None
    return rle_to_mask(value["rle"], int(w), int(h))


def _mask_agreement(pred: Sequence[Item], true: Sequence[Item]) -> float:
    by_label: dict[str, list[np.ndarray[Any, np.dtype[np.bool_]] | None]] = defaultdict(
        lambda: [None, None]
    )
    for side, items in ((0, pred), (1, true)):
        for item in items:
            mask = _mask(item)
            if mask is None:
                continue
            label = region_label(item.get("value", {}))
            current = by_label[label][side]
            by_label[label][side] = mask if current is None else (current | mask)
    if not by_label:
        return 1.0 if len(pred) == len(true) else 0.0
    scores = []
    for p_mask, t_mask in by_label.values():
        if p_mask is None or t_mask is None or p_mask.shape != t_mask.shape:
            scores.append(0.0)
            continue
        union = np.logical_or(p_mask, t_mask).sum()
        scores.append(float(np.logical_and(p_mask, t_mask).sum() / union) if union else 1.0)
    return sum(scores) / len(scores)


def _set_of(items: Sequence[Item], key: str) -> set[str]:
    out: set[str] = set()
    for item in items:
        for v in item.get("value", {}).get(key, []):
            out.add(repr(v) if isinstance(v, list) else str(v))
    return out


def _control_agreement(kind: str, pred: Sequence[Item], true: Sequence[Item]) -> float:
    if kind in ("choices", "taxonomy"):
        p, t = _set_of(pred, kind), _set_of(true, kind)
        return len(p & t) / len(p | t) if p | t else 1.0
    if kind in (
        "labels",
        "hypertextlabels",
        "paragraphlabels",
        "timeserieslabels",
        "timelinelabels",
    ):
        return _span_agreement(pred, true)
    if kind in (
        "rectanglelabels",
        "rectangle",
        "polygonlabels",
        "polygon",
        "ellipselabels",
        "ellipse",
    ):
        return _match_regions(pred, true, keypoints=False)
    if kind in ("keypointlabels", "keypoint"):
        return _match_regions(pred, true, keypoints=True)
    if kind in ("brushlabels", "brush"):
        return _mask_agreement(pred, true)
    p_vals = sorted(repr(sorted(i.get("value", {}).items())) for i in pred)
    t_vals = sorted(repr(sorted(i.get("value", {}).items())) for i in true)
    return 1.0 if p_vals == t_vals else 0.0


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval(value: Mapping[str, Any]) -> tuple[float, float] | None:
    """A segment of time: audio seconds, a numeric time series range, a video frame range."""
    ranges = value.get("ranges")
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], Mapping):
        first, last = _number(ranges[0].get("start")), _number(ranges[0].get("end"))
        # Frames are inclusive: frames 3..3 are one frame long.
        return None if first is None or last is None else (first, last + 1.0)
    start, end = _number(value.get("start")), _number(value.get("end"))
    if start is None or end is None or not ("channel" in value or "instant" in value):
        return None
    return start, end


def _interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    if a[0] == a[1] and b[0] == b[1]:  # instants
        return 1.0 if a[0] == b[0] else 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _segments(items: Sequence[Item]) -> list[tuple[str, tuple[float, float]]] | None:
    found = []
    for item in items:
        value = item.get("value", {})
        interval = _interval(value)
        if interval is None:
            return None
        found.append((region_label(value), interval))
    return found


def _span_agreement(pred: Sequence[Item], true: Sequence[Item]) -> float:
    """F1 of span-like results: by geometry, by overlap in time, or by exact stored offsets."""
    if any(
        "start" not in i.get("value", {}) and "ranges" not in i.get("value", {})
        for i in [*pred, *true]
    ):
        # Labels of image tools' regions (LS's split format): compared as regions.
        return _match_regions(pred, true, keypoints=False)
    p_segments, t_segments = _segments(pred), _segments(true)
    if p_segments is not None and t_segments is not None:
        used: set[int] = set()
        for label, segment in p_segments:
            for j, (t_label, t_segment) in enumerate(t_segments):
                if j in used or t_label != label:
                    continue
                if _interval_iou(segment, t_segment) >= IOU_THRESHOLD:
                    used.add(j)
                    break
        return _f1(len(used), len(pred), len(true))

    def key(item: Item) -> tuple[str, ...]:
        value = item.get("value", {})
        # Paragraph indices are stored as strings by the editor, numbers by some tools.
        return (*(str(value.get(k, "")) for k in _SPAN_KEYS), region_label(value))

    remaining = [key(t) for t in true]
    matches = 0
    for p in pred:
        if key(p) in remaining:
            remaining.remove(key(p))
            matches += 1
    return _f1(matches, len(pred), len(true))


def _by_control(items: Iterable[Item]) -> dict[tuple[str, str], list[Item]]:
    grouped: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        if isinstance(item, Mapping) and "from_name" in item and item.get("type") != "relation":
            grouped[(str(item["from_name"]), str(item.get("type", "")))].append(item)
    return grouped


def agreement(predicted: Iterable[Item], annotated: Iterable[Item]) -> float:
    """Agreement in [0, 1] between a prediction's and an annotation's ``result`` lists."""
    pred, true = _by_control(predicted), _by_control(annotated)
    keys = pred.keys() | true.keys()
    if not keys:
        return 1.0
    total = sum(
        _control_agreement(kind, pred.get((n, kind), []), true.get((n, kind), []))
        for n, kind in keys
    )
    return total / len(keys)
