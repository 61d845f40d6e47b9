"""Builders for videos: tracked boxes (``VideoRectangle``) and frame spans (``TimelineLabels``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["Keyframe", "timeline_span", "video_rectangle"]


@dataclass(frozen=True)
class Keyframe:
    """One keyframe of a ``videorectangle`` sequence.

    Attributes:
        frame: LS frame number, from 1.
        x: left edge, % of the frame width.
        y: top edge, % of the frame height.
        width: % of the frame width, at most 100.
        height: % of the frame height, at most 100.
        enabled: ``False`` ends the box's lifespan here (LS stops interpolating after it).
    """

    frame: int
    x: float
    y: float
    width: float
    height: float
    enabled: bool = True


def video_rectangle(
    control: Control,
    labels: Control,
    keyframes: Sequence[Keyframe],
    *,
    label: str,
    frames_count: int,
    duration: float,
    framerate: float,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A box tracked through a video, for a ``VideoRectangle`` control.

    A ``VideoRectangle`` has no labels of its own: its regions carry a label of the
    ``Labels`` control on the same ``Video``. LS interpolates the box between keyframes.

    Args:
        control: the ``VideoRectangle`` control.
        labels: the ``Labels`` control on the same ``Video`` that holds ``label``.
        keyframes: the track's keyframes, in increasing frame order.
        label: one of ``labels``' label names.
        frames_count: the video's length in LS frames.
        duration: the video's length in seconds.
        framerate: LS's frame rate for the video; a keyframe's ``time`` is ``frame / framerate``
            as LS itself writes it (frame 1 at 24 fps → 0.0417 s).
        score: the track's confidence in [0, 1].
        to_name: the ``Video`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{framesCount, duration, sequence, labels}``; each item of
        ``sequence`` is ``{frame, x, y, width, height, rotation, enabled, time}``.

    Raises:
        ValueError: a wrong control, an unknown label, no keyframes, frames out of order or
            past ``frames_count``, or coordinates or sizes outside 0..100.
    """
    _checks.require_tag(control, "video_rectangle", "VideoRectangle")
    video = _checks.resolve_to_name(control, to_name)
    if labels.type != "labels" or video not in labels.to_name:
        raise ValueError(f"{labels.tag} {labels.name!r} is not a Labels control on {video!r}")
    count = _checks.integer(frames_count, "frames_count", 1)
    rate = _checks.positive(framerate, "framerate")
    if not keyframes:
        raise ValueError("a video rectangle needs at least one keyframe")
    sequence: list[dict[str, Any]] = []
    previous = 0
    for key in keyframes:
        frame = _checks.integer(key.frame, "frame", 1)
        if frame <= previous or frame > count:
            raise ValueError(f"keyframe {frame} is out of order or past frame {count}")
        previous = frame
        sequence.append(
            {
                "frame": frame,
                "x": _checks.percent(key.x, "x"),
                "y": _checks.percent(key.y, "y"),
                "width": _size(key.width, "width"),
                "height": _size(key.height, "height"),
                "rotation": 0,
                "enabled": bool(key.enabled),
                "time": frame / rate,
            }
        )
    value = {
        "framesCount": count,
        "duration": _checks.positive(duration, "duration"),
        "sequence": sequence,
        "labels": [_checks.check_label(labels, label)],
    }
    return make_region(control, value, score=score, to_name=video, region_id=region_id)


def _size(value: float, what: str) -> float:
    # LS's value model caps a keyframe's width and height at 100 (% of the frame).
    _checks.positive(value, what)
    return _checks.percent(value, what)


def timeline_span(
    control: Control,
    *,
    start: int,
    end: int,
    label: str,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """Frames of a ``Video`` classified with a label, for a ``TimelineLabels`` control.

    Args:
        control: a ``TimelineLabels`` control.
        start: the first frame, from 1 (LS's frame numbers).
        end: the last frame (inclusive), ``>= start``; equal for a single frame.
        label: one of the control's labels.
        score: confidence in [0, 1].
        to_name: the ``Video`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``timelinelabels`` region with value ``{ranges: [{start, end}], timelinelabels}``,
        one range per region as the LS editor saves it.
    """
    _checks.require_tag(control, "timeline_span", "TimelineLabels")
    _checks.target_object(control, to_name, "timeline_span", "Video")
    first = _checks.integer(start, "start", 1)
    last = _checks.integer(end, "end", 1)
    if last < first:
        raise ValueError(f"need start <= end (frames), got start={first}, end={last}")
    value = {
        "ranges": [{"start": first, "end": last}],
        **_checks.labels_value(control, label),
    }
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)
