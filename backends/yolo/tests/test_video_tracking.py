"""VideoRectangle end to end: a detector trained at test time tracks a rectangle through a video."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prelabel import UnsupportedConfig
from prelabel.config import LabelConfig
from prelabel.testing import make_context
from prelabel_yolo import YoloBackend
from prelabel_yolo.synthetic import moving_box_video

FPS = 10.0
FRAMES = 40
SIZE = (96, 72)

VIDEO = """<View><Video name="video" value="$video" framerate="10"/>
<VideoRectangle name="box" toName="video" model_path="red-detector.pt" {attrs}/>
<Labels name="tag" toName="video"><Label value="Red box" predicted_values="red"/></Labels></View>"""


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector(
    trained: tuple[YoloBackend, Path, dict[str, float], str, set[int]], model_dir: Path
) -> str:
    """The test-trained red-rectangle detector, under PRELABEL_MODEL_DIR as model_path names it."""
    shutil.copyfile(trained[1] / "label.pt", model_dir / "red-detector.pt")
    return "red-detector.pt"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[tuple[int, int, int, int]]]:
    """A data: URI of the video (no video suffix, as many LS URLs) and the box on each frame."""
    path = tmp_path_factory.mktemp("video") / "moving.avi"
    drawn = moving_box_video(
        np.random.default_rng(5),
        path,
        frames=FRAMES,
        size=SIZE,
        fps=FPS,
        start=(4, 8, 30, 26),
        step=(1.5, 0.8),
    )
    uri = "data:application/octet-stream;base64," + base64.b64encode(path.read_bytes()).decode()
    return uri, drawn


def _boxes(region: dict[str, Any]) -> dict[int, tuple[float, ...]]:
    """LS frame → pixel box of each keyframe."""
    w, h = SIZE
    return {
        k["frame"]: (
            k["x"] * w / 100,
            k["y"] * h / 100,
            (k["x"] + k["width"]) * w / 100,
            (k["y"] + k["height"]) * h / 100,
        )
        for k in region["value"]["sequence"]
    }


def _follower(regions: list[Any], frames: int) -> dict[str, Any]:
    """The track with the most keyframes, after checking that any others are strays.

    A detector trained for seconds on synthetic images may add a weak second box now and then,
    and its track lives a few frames (seen on other machines: a second track on frame 1). That
    is noise; a second track as long as the first (a duplicate, or the object's track broken
    in two) is not.
    """
    tracks = sorted((r.to_ls() for r in regions), key=lambda r: len(_boxes(r)), reverse=True)
    assert tracks, "no track"
    strays = sum(len(_boxes(r)) for r in tracks[1:])
    assert strays <= 0.2 * frames, [len(_boxes(r)) for r in tracks]
    return tracks[0]


def test_one_track_follows_the_moving_rectangle(
    detector: str, video: tuple[str, list[tuple[int, int, int, int]]], tmp_path: Path
) -> None:
    uri, drawn = video
    backend = YoloBackend(YoloBackend.load_settings(preload=[], imgsz=96))
    backend.load()
    ctx = make_context(backend, VIDEO.format(attrs=""), media=tmp_path)
    tasks = [{"id": 1, "data": {"video": uri}}, {"id": 2, "data": {"video": "data:,not-a-video"}}]
    found, unreadable = backend.predict(tasks, ctx)
    assert unreadable.result == [] and backend.stats.unreadable_videos == 1

    region = _follower(found.result, FRAMES)
    assert (region["type"], region["from_name"], region["to_name"]) == (
        "videorectangle",
        "box",
        "video",
    )
    value = region["value"]
    assert value["labels"] == ["Red box"]
    assert value["framesCount"] == FRAMES and value["duration"] == pytest.approx(FRAMES / FPS)
    boxes = _boxes(region)
    assert len(boxes) >= 0.8 * FRAMES  # a keyframe on (nearly) every frame, stride 1
    good = [f for f, box in boxes.items() if _iou(box, drawn[f - 1]) > 0.5]
    assert len(good) >= 0.9 * len(boxes), {f: (boxes[f], drawn[f - 1]) for f in boxes}
    for key in value["sequence"]:
        assert key["time"] == pytest.approx(key["frame"] / FPS)
    # The task's decision: [p, 1 - p] with p the mean confidence of one of its tracks (the least
    # decided one: the follower, unless a stray's is nearer 0.5).
    scores = [r.to_ls()["score"] for r in found.result]
    assert any(found.probabilities == pytest.approx([p, 1 - p]) for p in scores), scores

    # Every third frame: keyframes only on processed frames (3, 6, …), still one track.
    strided = backend.predict(
        tasks[:1],
        make_context(backend, VIDEO.format(attrs='model_frame_stride="3"'), media=tmp_path),
    )
    assert all(frame % 3 == 0 for r in strided[0].result for frame in _boxes(r.to_ls())), (
        "keyframes off the processed frames"
    )
    boxes = _boxes(_follower(strided[0].result, FRAMES // 3))
    assert len(boxes) >= 0.8 * FRAMES / 3
    assert sum(_iou(box, drawn[f - 1]) > 0.5 for f, box in boxes.items()) >= 0.9 * len(boxes)


def test_video_configs_are_checked_at_setup(detector: str) -> None:
    backend = YoloBackend(YoloBackend.load_settings(preload=[]))
    backend.check_config(LabelConfig.parse(VIDEO.format(attrs='model_tracker="botsort"')))
    with pytest.raises(UnsupportedConfig, match="bytetrack or botsort"):
        backend.check_config(LabelConfig.parse(VIDEO.format(attrs='model_tracker="sort"')))
    unmapped = VIDEO.format(attrs="").replace(' predicted_values="red"', "")
    with pytest.raises(UnsupportedConfig, match="box: red"):
        backend.check_config(LabelConfig.parse(unmapped))
