"""Ultralytics ``Results`` → LS regions, with expected values worked out by hand.

The ``Results`` objects are real ultralytics ones, built from known tensors, so every
coordinate conversion is checked against numbers computed here, not by the code under test.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Results

from prelabel.config import LabelConfig, LabelMap
from prelabel.results import rle_to_mask
from prelabel_yolo.controls import ControlPlan, PredictStats, convert, keypoint_labels
from prelabel_yolo.models import LoadedModel

NAMES = {0: "car", 1: "dog", 2: "person"}
IMAGE = np.zeros((100, 200, 3), dtype=np.uint8)  # height 100, width 200


def _control(xml_body: str, name: str = "c") -> Any:
    config = LabelConfig.parse(f'<View><Image name="image" value="$image"/>{xml_body}</View>')
    return config, config.control(name)


def _plan(control: Any, task: str = "detect", conf: float = 0.25, **kw: Any) -> ControlPlan:
    model = LoadedModel("m", SimpleNamespace(names=NAMES, task=task))
    return ControlPlan(
        control=control,
        model=model,
        label_map=LabelMap.build(control, NAMES.values()),
        conf=conf,
        iou=0.7,
        max_det=300,
        floor=0.1,
        **kw,
    )


def test_boxes_map_labels_drop_unmapped_and_report_near_misses() -> None:
    _, control = _control(
        '<RectangleLabels name="c" toName="image">'
        '<Label value="Vehicle" predicted_values="car"/><Label value="Person"/></RectangleLabels>'
    )
    boxes = torch.tensor(
        [
            [20.0, 10.0, 60.0, 50.0, 0.9, 0],  # car → Vehicle
            [100.0, 20.0, 150.0, 90.0, 0.6, 2],  # person → Person (case-insensitive)
            [5.0, 5.0, 25.0, 25.0, 0.8, 1],  # dog: no label, dropped
            [0.0, 0.0, 10.0, 10.0, 0.15, 0],  # below threshold, above floor
        ]
    )
    stats = PredictStats()
    out = convert(_plan(control), Results(IMAGE, "x.png", NAMES, boxes=boxes), stats)
    values = [r.to_ls() for r in out.regions]
    assert len(values) == 2
    first = dict(values[0]["value"])
    assert first.pop("rectanglelabels") == ["Vehicle"]
    assert first == pytest.approx(
        {"x": 10.0, "y": 10.0, "width": 20.0, "height": 40.0, "rotation": 0.0}
    )
    assert values[0]["score"] == pytest.approx(0.9)
    assert values[0]["original_width"] == 200 and values[0]["original_height"] == 100
    assert values[1]["value"]["rectanglelabels"] == ["Person"]
    assert values[1]["value"]["x"] == pytest.approx(50.0)
    assert stats.unmapped == {"dog": 1}
    assert stats.below_threshold == 1
    # Candidates 0.9, 0.6, 0.8, 0.15: the least decided is 0.6.
    assert out.distribution == pytest.approx([0.6, 0.4])


def test_no_candidates_means_confidently_empty() -> None:
    _, control = _control(
        '<RectangleLabels name="c" toName="image"><Label value="car"/></RectangleLabels>'
    )
    out = convert(
        _plan(control), Results(IMAGE, "x", NAMES, boxes=torch.zeros((0, 6))), PredictStats()
    )
    assert out.regions == [] and out.distribution == [1.0]


def test_oriented_box_becomes_rotated_rectangle() -> None:
    _, control = _control(
        '<RectangleLabels name="c" toName="image"><Label value="car"/></RectangleLabels>'
    )
    # Centre (100, 50), 40 x 20 px, rotated 90° clockwise: the unrotated top-left corner
    # maps to (100 + 10, 50 - 20) = (110, 30) px → (55 %, 30 %).
    obb = torch.tensor([[100.0, 50.0, 40.0, 20.0, math.pi / 2, 0.8, 0]])
    out = convert(_plan(control, task="obb"), Results(IMAGE, "x", NAMES, obb=obb), PredictStats())
    value = dict(out.regions[0].to_ls()["value"])
    assert value.pop("rectanglelabels") == ["car"]
    assert value == pytest.approx(
        {"x": 55.0, "y": 30.0, "width": 20.0, "height": 20.0, "rotation": 90.0}
    )


def test_brush_mask_is_full_resolution_and_exact() -> None:
    _, control = _control('<BrushLabels name="c" toName="image"><Label value="dog"/></BrushLabels>')
    mask = torch.zeros((1, 100, 200))
    mask[0, 20:40, 30:90] = 1.0
    boxes = torch.tensor([[30.0, 20.0, 90.0, 40.0, 0.7, 1]])
    result = Results(IMAGE, "x", NAMES, boxes=boxes, masks=mask)
    region = convert(_plan(control, task="segment"), result, PredictStats()).regions[0].to_ls()
    decoded = rle_to_mask(region["value"]["rle"], 200, 100)
    expected = np.zeros((100, 200), dtype=bool)
    expected[20:40, 30:90] = True
    assert (decoded == expected).all()
    assert region["value"]["brushlabels"] == ["dog"]


def test_polygon_follows_the_mask_outline() -> None:
    _, control = _control(
        '<PolygonLabels name="c" toName="image"><Label value="dog"/></PolygonLabels>'
    )
    mask = torch.zeros((1, 100, 200))
    mask[0, 20:40, 30:90] = 1.0
    boxes = torch.tensor([[30.0, 20.0, 90.0, 40.0, 0.7, 1]])
    result = Results(IMAGE, "x", NAMES, boxes=boxes, masks=mask)
    points = np.array(
        convert(_plan(control, task="segment"), result, PredictStats()).regions[0].value["points"]
    )
    # The outline of columns 30..89 and rows 20..39, in percent (width 200, height 100).
    assert points[:, 0].min() == pytest.approx(15.0, abs=0.6)
    assert points[:, 0].max() == pytest.approx(45.0, abs=0.6)
    assert points[:, 1].min() == pytest.approx(20.0, abs=1.1)
    assert points[:, 1].max() == pytest.approx(40.0, abs=1.1)


def test_keypoints_grouped_under_their_box() -> None:
    config, control = _control(
        '<RectangleLabels name="box" toName="image"><Label value="person"/></RectangleLabels>'
        '<KeyPointLabels name="c" toName="image" model_bbox_control="box">'
        '<Label value="Nose"/><Label value="left eye"/></KeyPointLabels>'
    )
    mapping = keypoint_labels(control, 17)
    assert mapping == {0: "Nose", 1: "left eye"}
    points = torch.zeros((1, 17, 3))
    points[0, 0] = torch.tensor([50.0, 25.0, 0.9])  # nose, visible
    points[0, 1] = torch.tensor([60.0, 25.0, 0.1])  # left eye, below threshold
    boxes = torch.tensor([[40.0, 10.0, 80.0, 90.0, 0.8, 2]])
    box_control = config.control("box")
    plan = _plan(control, task="pose", keypoint_labels=mapping, box_control=box_control)
    plan.label_map = LabelMap.build(box_control, NAMES.values())
    out = convert(plan, Results(IMAGE, "x", NAMES, boxes=boxes, keypoints=points), PredictStats())
    box, nose = (r.to_ls() for r in out.regions)
    assert box["from_name"] == "box" and box["value"]["rectanglelabels"] == ["person"]
    assert nose["parentID"] == box["id"]
    assert nose["value"]["x"] == pytest.approx(25.0) and nose["value"]["y"] == pytest.approx(25.0)
    assert nose["value"]["keypointlabels"] == ["Nose"]


def test_choices_single_and_multiple() -> None:
    probs = torch.tensor([0.1, 0.6, 0.3])
    _, single = _control(
        '<Choices name="c" toName="image"><Choice value="Dog"/><Choice value="Car"/></Choices>'
    )
    out = convert(
        _plan(single, task="classify"), Results(IMAGE, "x", NAMES, probs=probs), PredictStats()
    )
    assert out.regions[0].to_ls()["value"] == {"choices": ["Dog"]}
    assert out.regions[0].score == pytest.approx(0.6)
    assert out.distribution == pytest.approx([0.6, 0.1])  # person has no choice

    _, multiple = _control(
        '<Choices name="c" toName="image" choice="multiple">'
        '<Choice value="Dog"/><Choice value="Person"/><Choice value="Car"/></Choices>'
    )
    out = convert(
        _plan(multiple, task="classify"), Results(IMAGE, "x", NAMES, probs=probs), PredictStats()
    )
    assert out.regions[0].to_ls()["value"] == {"choices": ["Dog", "Person"]}
    assert out.regions[0].score == pytest.approx(0.3)
