"""Training of keypoint and classification controls: exported labels by hand, and real fits."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.config import LabelConfig
from prelabel.testing import make_context, make_train_job
from prelabel_yolo import YoloBackend
from prelabel_yolo.datasets import keypoint_layout, pose_labels
from prelabel_yolo.synthetic import COLOURS, data_uri

POSE = """<View><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="person"/></RectangleLabels>
<KeyPointLabels name="kp" toName="image" {attrs}>
  <Label value="head"/><Label value="foot"/><Label value="hand"/>
</KeyPointLabels></View>"""


def _point(label: str, x: float, y: float, parent: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from_name": "kp",
        "to_name": "image",
        "type": "keypointlabels",
        "value": {"x": x, "y": y, "width": 1.0, "keypointlabels": [label]},
    }
    if parent is not None:
        item["parentID"] = parent
    return item


def test_pose_lines_group_keypoints_under_their_box() -> None:
    config = LabelConfig.parse(POSE.format(attrs='model_bbox_control="box"'))
    control, box = config.control("kp"), config.control("box")
    count, index, coco = keypoint_layout(control, 17)  # custom names: one point per label
    assert (count, index, coco) == (3, {"head": 0, "foot": 1, "hand": 2}, False)
    result = [
        {"id": "b1", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
         "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0,
                   "rectanglelabels": ["person"]}},
        _point("head", 20, 30, "b1"),
        _point("foot", 25, 55, "b1"),
        _point("hand", 90, 90, "elsewhere"),  # its box is not in the annotation
        _point("tail", 50, 50, "b1"),  # not a label of the control
    ]  # fmt: skip
    # Box centre (10 + 15, 20 + 20) %, size 30 x 40 %; head, foot visible; hand not labelled.
    assert pose_labels(control, box, result, (count, index), (200, 100)) == [
        "0 0.250000 0.400000 0.300000 0.400000 "
        "0.200000 0.300000 2.000000 0.250000 0.550000 2.000000 0.000000 0.000000 0.000000"
    ]
    # Without a box control: one instance, the keypoints' box padded by 5 % of each side.
    single = [_point("head", 20, 30), _point("foot", 25, 55)]
    assert pose_labels(control, None, single, (count, index), (200, 100)) == [
        "0 0.225000 0.425000 0.150000 0.350000 "
        "0.200000 0.300000 2.000000 0.250000 0.550000 2.000000 0.000000 0.000000 0.000000"
    ]


def test_coco_named_keypoints_keep_the_base_models_layout() -> None:
    config = LabelConfig.parse(
        '<View><Image name="image" value="$image"/><KeyPointLabels name="kp" toName="image">'
        '<Label value="Nose"/><Label value="right eye"/></KeyPointLabels></View>'
    )
    count, index, coco = keypoint_layout(config.control("kp"), 17)
    assert (count, index, coco) == (17, {"Nose": 0, "right eye": 2}, True)


def _colour_png(rng: np.random.Generator, colour: str) -> bytes:
    """32 x 32 dark noise with a filled square of ``colour`` covering its middle."""
    from PIL import Image

    pixels = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
    pixels[6:26, 6:26] = COLOURS[colour]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


CHOICES = """<View><Image name="image" value="$image"/>
<Choices name="colour" toName="image"><Choice value="Red"/><Choice value="Blue"/></Choices></View>"""


def test_fit_learns_to_classify_colours(tmp_path: Path) -> None:
    backend = YoloBackend(
        YoloBackend.load_settings(
            classify_model="yolov8n-cls.yaml",
            preload=[],
            epochs=20,
            train_imgsz=32,
            train_batch=8,
            imgsz=32,
            # RandAugment's colour operations and random erasing would hide the very cue.
            train_options={
                "seed": 0,
                "optimizer": "AdamW",
                "lr0": 0.003,
                "warmup_epochs": 0,
                "auto_augment": None,
                "erasing": 0.0,
            },
        )
    )
    backend.load()
    rng = np.random.default_rng(3)
    names = {"red": "Red", "blue": "Blue"}
    tasks = []
    for i in range(40):
        colour = ("red", "blue")[i % 2]
        result = [{"from_name": "colour", "to_name": "image", "type": "choices",
                   "value": {"choices": [names[colour]]}}]  # fmt: skip
        tasks.append(
            {"id": i, "data": {"image": data_uri(_colour_png(rng, colour))},
             "annotations": [{"id": i, "result": result}]}
        )  # fmt: skip
    tasks.append({"id": 99, "data": {"image": data_uri(_colour_png(rng, "red"))}})  # unlabelled
    job = make_train_job(backend, CHOICES, tasks, workdir=tmp_path / "v1", media=tmp_path)
    result = backend.fit(job)
    assert result is not None
    assert sorted(p.name for p in job.workdir.iterdir()) == ["colour.pt"]
    assert result.metrics["colour.train_images"] + result.metrics["colour.val_images"] == 40
    assert result.metrics["colour.top1"] >= 0.8

    unseen = [("red", "blue")[i % 2] for i in range(10)]
    ctx = make_context(backend, CHOICES, media=job.media, model_dir=job.workdir)
    predictions = backend.predict(
        [{"id": i, "data": {"image": data_uri(_colour_png(rng, c))}} for i, c in enumerate(unseen)],
        ctx,
    )
    chosen = [p.result[0].value["choices"] if p.result else [] for p in predictions]
    correct = sum(c == [names[colour]] for c, colour in zip(chosen, unseen, strict=True))
    assert correct >= 9, chosen


def test_fit_trains_a_pose_model_for_custom_keypoints(tmp_path: Path) -> None:
    from ultralytics import YOLO

    backend = YoloBackend(
        YoloBackend.load_settings(
            pose_model="yolov8n-pose.yaml", preload=[], epochs=1, train_imgsz=64, train_batch=8
        )
    )
    backend.load()
    rng = np.random.default_rng(4)
    xml = POSE.format(attrs='model_bbox_control="box"')
    tasks = []
    for i in range(8):
        png = _colour_png(rng, "red")
        # The square spans 6..26 of 32 px: head at its top-left, foot at its bottom-right.
        result = [
            {"id": f"b{i}", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
             "value": {"x": 18.75, "y": 18.75, "width": 62.5, "height": 62.5, "rotation": 0,
                       "rectanglelabels": ["person"]}},
            _point("head", 18.75, 18.75, f"b{i}"),
            _point("foot", 81.25, 81.25, f"b{i}"),
        ]  # fmt: skip
        tasks.append(
            {
                "id": i,
                "data": {"image": data_uri(png)},
                "annotations": [{"id": i, "result": result}],
            }
        )
    job = make_train_job(backend, xml, tasks, workdir=tmp_path / "v1", media=tmp_path)
    result = backend.fit(job)
    assert result is not None
    # Only the pose model trains: the grouping box control is filled by it, not by a detector.
    assert sorted(p.name for p in job.workdir.iterdir()) == ["kp.pt"]
    assert {"kp.map50", "kp.map50_95"} <= set(result.metrics)
    tuned = YOLO(str(job.workdir / "kp.pt"))
    assert list(tuned.model.kpt_shape) == [3, 3] and tuned.names == {0: "person"}
    # The tuned model's keypoints map back to the labels in order.
    plans = backend._plan(LabelConfig.parse(xml), backend._settings, job.workdir)
    assert dict(plans.images[0].keypoint_labels) == {0: "head", 1: "foot", 2: "hand"}
