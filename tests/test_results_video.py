"""The ``videorectangle`` builder: LS's keyframe sequence, and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from prelabel import results
from prelabel.config import LabelConfig
from prelabel.results import Keyframe

CONFIG = LabelConfig.parse(
    '<View><Video name="video" value="$video" framerate="25"/>'
    '<Video name="video2" value="$video2"/>'
    '<VideoRectangle name="box" toName="video,video2"/>'
    '<Labels name="tag" toName="video"><Label value="Vehicle"/></Labels>'
    '<Labels name="tag2" toName="video2"><Label value="Dog"/></Labels>'
    '<Choices name="kind" toName="video"><Choice value="Street"/></Choices></View>'
)
BOX, TAG = CONFIG.control("box"), CONFIG.control("tag")
VIDEO: dict[str, Any] = {"frames_count": 50, "duration": 2.0, "framerate": 25.0}
ONE = [Keyframe(1, 10.0, 20.0, 30.0, 40.0)]


def test_video_rectangle_writes_the_ls_value() -> None:
    keyframes = [
        Keyframe(1, 10.0, 20.0, 30.0, 40.0),
        Keyframe(3, 12.0, 20.0, 30.0, 40.0, enabled=False),
    ]
    region = results.video_rectangle(
        BOX, TAG, keyframes, label="Vehicle", score=0.8, region_id="t1", **VIDEO
    )
    # LS's own time for a keyframe is frame / framerate: 1 / 25 and 3 / 25 s.
    sequence = [
        {"frame": 1, "x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0,
         "rotation": 0, "enabled": True, "time": pytest.approx(0.04)},
        {"frame": 3, "x": 12.0, "y": 20.0, "width": 30.0, "height": 40.0,
         "rotation": 0, "enabled": False, "time": pytest.approx(0.12)},
    ]  # fmt: skip
    assert region.to_ls() == {
        "id": "t1",
        "from_name": "box",
        "to_name": "video",
        "type": "videorectangle",
        "value": {
            "framesCount": 50,
            "duration": 2.0,
            "sequence": sequence,
            "labels": ["Vehicle"],
        },
        "score": 0.8,
    }


def test_video_rectangle_gets_a_fresh_id_and_another_video() -> None:
    region = results.video_rectangle(
        BOX, CONFIG.control("tag2"), ONE, label="Dog", to_name="video2", **VIDEO
    )
    assert region.id is not None and re.fullmatch(r"[0-9a-f]{10}", region.id)
    assert region.to_name == "video2" and region.score is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "Dog"}, "label 'Dog' is not a label of Labels 'tag'"),
        ({"keyframes": []}, "needs at least one keyframe"),
        ({"keyframes": [*ONE, Keyframe(1, 1, 1, 1, 1)]}, "keyframe 1 is out of order"),
        ({"keyframes": [Keyframe(51, 1, 1, 1, 1)]}, "past frame 50"),
        ({"keyframes": [Keyframe(0, 1, 1, 1, 1)]}, "frame must be at least 1"),
        ({"keyframes": [Keyframe(1, 101, 1, 1, 1)]}, "x must be a percentage in 0..100"),
        ({"keyframes": [Keyframe(1, 1, 1, 0, 1)]}, "width must be > 0"),
        ({"frames_count": 0}, "frames_count must be at least 1"),
        ({"framerate": 0}, "framerate must be > 0"),
        ({"duration": -1}, "duration must be > 0"),
        ({"score": 1.5}, "score must be in [0, 1]"),
        ({"to_name": "video2"}, "Labels 'tag' is not a Labels control on 'video2'"),
        ({"to_name": "other"}, "to_name 'other' is not a toName of VideoRectangle 'box'"),
        ({"control": TAG}, "video_rectangle() makes results for VideoRectangle controls"),
        ({"labels": CONFIG.control("kind")}, "Choices 'kind' is not a Labels control"),
    ],
)
def test_video_rectangle_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "control": BOX,
        "labels": TAG,
        "keyframes": ONE,
        "label": "Vehicle",
        **VIDEO,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        results.video_rectangle(**{**args, **kwargs})
