"""Tracks → LS ``videorectangle`` regions, with expected values worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from prelabel import UnsupportedConfig
from prelabel.config import LabelConfig, LabelMap
from prelabel_yolo.controls import PredictStats
from prelabel_yolo.models import LoadedModel
from prelabel_yolo.video import (
    Observation,
    VideoInfo,
    VideoPlan,
    labels_control,
    tracker_options,
    tracks_to_outcome,
)

NAMES = {0: "car", 1: "dog"}


def _config(video_attrs: str = 'framerate="25"', box_attrs: str = "") -> LabelConfig:
    return LabelConfig.parse(
        f'<View><Video name="video" value="$video" {video_attrs}/>'
        f'<VideoRectangle name="box" toName="video" {box_attrs}/>'
        '<Labels name="tag" toName="video"><Label value="Vehicle" predicted_values="car"/>'
        "</Labels></View>"
    )


def _plan(config: LabelConfig, framerate: float = 25.0, **kw: Any) -> VideoPlan:
    control = config.control("box")
    labels = labels_control(config, control)
    return VideoPlan(
        control=control,
        labels=labels,
        model=LoadedModel("m", SimpleNamespace(names=NAMES, task="detect")),
        label_map=LabelMap.build(labels, NAMES.values()),
        conf=0.25,
        iou=0.7,
        floor=0.05,
        framerate=framerate,
        **kw,
    )


def _box(x1: float, y1: float, w: float = 40.0, h: float = 40.0) -> tuple[float, ...]:
    return (x1, y1, x1 + w, y1 + h)


def test_tracks_become_regions_with_gaps_and_ends_disabled() -> None:
    plan = _plan(_config())
    info = VideoInfo(frames=10, fps=25.0, width=200, height=100)
    car = [
        Observation(0, 1, 0, 0.9, _box(20, 10)),
        Observation(1, 1, 0, 0.8, _box(30, 10)),
        Observation(2, 1, 0, 0.7, _box(40, 10)),
        Observation(5, 1, 0, 0.6, _box(70, 10)),  # lost on frames 3 and 4
    ]
    dog = [Observation(i, 2, 1, 0.9, _box(0, 0)) for i in range(3)]
    # Seen as a dog once (0.3) and as a car once (0.4): the car vote wins; seen to the end.
    late = [Observation(8, 3, 1, 0.3, _box(100, 50)), Observation(9, 3, 0, 0.4, _box(110, 50))]
    stats = PredictStats()
    out = tracks_to_outcome(plan, car + dog + late, info, last_index=9, complete=True, stats=stats)
    assert stats.unmapped == {"dog": 1}
    first, second = (r.to_ls() for r in out.regions)
    assert first["value"]["labels"] == ["Vehicle"] and first["score"] == pytest.approx(0.75)
    assert first["value"]["framesCount"] == 10 and first["value"]["duration"] == 0.4
    frames = [
        (k["frame"], *(round(k[c], 9) for c in ("x", "y", "width", "height")), k["enabled"])
        for k in first["value"]["sequence"]
    ]
    # x = x1 / 200 %, y = 10 / 100 = 10 %, 40 px = 20 % wide, 40 % high.
    assert frames == [
        (1, 10.0, 10.0, 20.0, 40.0, True),
        (2, 15.0, 10.0, 20.0, 40.0, True),
        (3, 20.0, 10.0, 20.0, 40.0, False),  # gap follows
        (6, 35.0, 10.0, 20.0, 40.0, False),  # the track ends at frame 6 of 10
    ]
    assert first["value"]["sequence"][3]["time"] == pytest.approx(6 / 25)
    assert second["score"] == pytest.approx(0.35)
    assert [(k["frame"], round(k["x"], 9), k["enabled"]) for k in second["value"]["sequence"]] == [
        (9, 50.0, True),
        (10, 55.0, True),  # seen on the last frame: the box lasts to the end
    ]
    # Track scores 0.75 and 0.35: the least decided is 0.35.
    assert out.distribution == pytest.approx([0.35, 0.65])


def test_file_frames_map_onto_ls_framerate() -> None:
    # No framerate on <Video>: LS counts 24 frames a second; the file has 30.
    plan = _plan(_config(video_attrs=""), framerate=24.0)
    info = VideoInfo(frames=30, fps=30.0, width=100, height=100)
    seen = [Observation(i, 1, 0, 0.9, _box(i, 0, 10, 10)) for i in range(6)]
    out = tracks_to_outcome(plan, seen, info, last_index=29, complete=True, stats=PredictStats())
    value = out.regions[0].to_ls()["value"]
    assert value["framesCount"] == 24
    # LS frame = round(i / 30 * 24) + 1: 1, 2, 3, 3 (i = 3, skipped), 4, 5; no gap between them.
    assert [(k["frame"], round(k["x"], 9), k["enabled"]) for k in value["sequence"]] == [
        (1, 0.0, True),
        (2, 1.0, True),
        (3, 2.0, True),
        (4, 4.0, True),
        (5, 5.0, False),
    ]


def test_stride_grows_for_long_videos_and_sets_gap_detection() -> None:
    plan = _plan(_config(), stride=1, max_frames=100)
    assert [plan.stride_for(n) for n in (100, 101, 250)] == [1, 2, 3]
    plan = _plan(_config(), stride=2, max_frames=100)
    assert [plan.stride_for(n) for n in (150, 200, 250)] == [2, 2, 3]
    plan = _plan(_config(), stride=3)
    info = VideoInfo(frames=30, fps=25.0, width=100, height=100)
    # Processed frames are 2, 5, 8, 11…; the track is missed on 8.
    seen = [Observation(i, 1, 0, 0.9, _box(0, 0, 10, 10)) for i in (2, 5, 11)]
    out = tracks_to_outcome(plan, seen, info, last_index=29, complete=True, stats=PredictStats())
    sequence = out.regions[0].to_ls()["value"]["sequence"]
    assert [(k["frame"], k["enabled"]) for k in sequence] == [(3, True), (6, False), (12, False)]


def test_tracker_options_from_control_attributes() -> None:
    control = _config(
        box_attrs='model_tracker="botsort" model_tracker_track_buffer="60" '
        'model_tracker_fuse_score="false"'
    ).control("box")
    options = tracker_options(control, conf=0.05, default="bytetrack")
    assert options["tracker_type"] == "botsort"
    assert options["track_buffer"] == 60 and options["fuse_score"] is False
    # A threshold below the tracker's own lowers them, so its boxes can start tracks.
    assert options["track_high_thresh"] == options["new_track_thresh"] == 0.05
    assert options["track_low_thresh"] == 0.05
    plain = tracker_options(_config().control("box"), conf=0.5, default="bytetrack")
    assert plain["tracker_type"] == "bytetrack"
    assert (plain["track_high_thresh"], plain["track_low_thresh"]) == (0.25, 0.1)
    for attrs, message in (
        ('model_tracker="sort"', "bytetrack or botsort"),
        ('model_tracker_buffer="3"', "not a bytetrack setting"),
        ('model_tracker_track_buffer="long"', "of type int"),
    ):
        with pytest.raises(UnsupportedConfig, match=message):
            tracker_options(_config(box_attrs=attrs).control("box"), 0.25, "bytetrack")


def test_video_rectangle_needs_a_labels_control() -> None:
    config = LabelConfig.parse(
        '<View><Video name="video" value="$video"/>'
        '<VideoRectangle name="box" toName="video"/></View>'
    )
    with pytest.raises(UnsupportedConfig, match="<Labels toName='video'>"):
        labels_control(config, config.control("box"))
