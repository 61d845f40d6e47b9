"""Region builders: values, conversions, validation errors, and LS JSON from protocol §13.

Every expected number below was worked out by hand (or by an independent computation written
here), never produced by the code under test.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from prelabel import results
from prelabel.config import Control, LabelConfig
from prelabel.results import Prediction, Region

CONFIG = LabelConfig.parse(
    """
<View>
  <Image name="image" value="$image"/>
  <Image name="image2" value="$image2"/>
  <Text name="text" value="$text"/>
  <HyperText name="html" value="$html"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral" alias="neu"/>
  </Choices>
  <Choices name="topics" toName="text" choice="multiple">
    <Choice value="Sports"/><Choice value="Politics"/>
  </Choices>
  <Taxonomy name="taxonomy" toName="text">
    <Choice value="Animal"><Choice value="Cat"/><Choice value="Dog"/></Choice>
    <Choice value="Plant"/>
  </Taxonomy>
  <Labels name="ner" toName="text"><Label value="ORG"/><Label value="PER"/></Labels>
  <HyperTextLabels name="html_ner" toName="html"><Label value="ORG"/></HyperTextLabels>
  <RectangleLabels name="label" toName="image,image2">
    <Label value="Car"/><Label value="Person"/>
  </RectangleLabels>
  <Rectangle name="box" toName="image"/>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <Polygon name="outline" toName="image"/>
  <KeyPointLabels name="kp" toName="image"><Label value="Nose"/></KeyPointLabels>
  <KeyPoint name="point" toName="image"/>
  <EllipseLabels name="eye" toName="image"><Label value="Eye"/></EllipseLabels>
  <BrushLabels name="tag" toName="image"><Label value="Car"/></BrushLabels>
  <Brush name="paint" toName="image"/>
  <TextArea name="transcription" toName="image,image2" perRegion="true"/>
  <TextArea name="summary" toName="text"/>
  <Rating name="quality" toName="text" maxRating="10"/>
  <Rating name="stars" toName="text"/>
  <Number name="count" toName="text" min="0" max="100"/>
  <Number name="free" toName="text"/>
</View>
"""
)


def ctl(name: str) -> Control:
    return CONFIG.control(name)


def _image_extra(width: int, height: int) -> dict:
    return {"original_width": width, "original_height": height, "image_rotation": 0}


def _is_region_id(value: str | None) -> bool:
    return value is not None and re.fullmatch(r"[0-9a-f]{10}", value) is not None


# --- classification ---------------------------------------------------------------------------


def test_choices_single():
    region = results.choices(ctl("sentiment"), ["Positive"], score=0.93)
    assert region.to_ls() == {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
        "score": 0.93,
    }


def test_choices_multiple_and_alias():
    assert results.choices(ctl("topics"), ["Sports", "Politics"]).value == {
        "choices": ["Sports", "Politics"]
    }
    assert results.choices(ctl("sentiment"), ["neu"]).value == {"choices": ["neu"]}


@pytest.mark.parametrize(
    ("control", "labels", "message"),
    [
        ("sentiment", ["Positive", "Negative"], "single-choice; got 2 labels"),
        (
            "sentiment",
            ["Happy"],
            "label 'Happy' is not a label of Choices 'sentiment' "
            "(allowed: 'Positive', 'Negative', 'neu')",
        ),
        ("sentiment", ["Neutral"], "label 'Neutral' is not a label"),  # the alias is stored
        ("sentiment", [], "labels must not be empty"),
        ("sentiment", "Positive", "must be a list of strings"),
        ("topics", ["Sports", "Sports"], "must not repeat"),
        ("ner", ["ORG"], "choices() makes results for Choices controls; control 'ner' is a Labels"),
    ],
)
def test_choices_errors(control, labels, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.choices(ctl(control), labels)


def test_taxonomy():
    region = results.taxonomy(ctl("taxonomy"), [["Animal", "Cat"], ("Plant",)], score=0.5)
    assert region.to_ls() == {
        "from_name": "taxonomy",
        "to_name": "text",
        "type": "taxonomy",
        "value": {"taxonomy": [["Animal", "Cat"], ["Plant"]]},
        "score": 0.5,
    }


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([["Cat"]], "path ['Cat'] is not a node of Taxonomy 'taxonomy'"),
        ([["Animal", "Fish"]], "is not a node"),
        ([], "non-empty list of paths"),
        ("Animal", "non-empty list of paths"),
        (["Animal"], "must be a list of strings"),
    ],
)
def test_taxonomy_errors(paths, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.taxonomy(ctl("taxonomy"), paths)


def test_rating():
    assert results.rating(ctl("quality"), 10).to_ls() == {
        "from_name": "quality",
        "to_name": "text",
        "type": "rating",
        "value": {"rating": 10},
    }
    assert results.rating(ctl("stars"), 5).value == {"rating": 5}


@pytest.mark.parametrize(
    ("control", "value", "message"),
    [
        ("stars", 6, "at most 5"),
        ("quality", 11, "at most 10"),
        ("stars", 0, "at least 1"),
        ("stars", 3.5, "must be an integer"),
        ("stars", True, "must be an integer"),
    ],
)
def test_rating_errors(control, value, message):
    with pytest.raises(ValueError, match=message):
        results.rating(ctl(control), value)


def test_number():
    assert results.number(ctl("count"), 3).to_ls() == {
        "from_name": "count",
        "to_name": "text",
        "type": "number",
        "value": {"number": 3},
    }
    assert isinstance(results.number(ctl("count"), 3).value["number"], int)
    assert results.number(ctl("free"), np.float32(-2.5)).value == {"number": -2.5}
    assert type(results.number(ctl("free"), np.float32(-2.5)).value["number"]) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (101, r"within the control's bounds \(min=0, max=100\)"),
        (-1, "bounds"),
        (math.nan, "finite"),
    ],
)
def test_number_errors(value, message):
    with pytest.raises(ValueError, match=message):
        results.number(ctl("count"), value)


def test_number_refuses_bool():
    with pytest.raises(ValueError, match="must be a number"):
        results.number(ctl("free"), True)


# --- rectangles -------------------------------------------------------------------------------


def test_rectangle_percent():
    region = results.rectangle(
        ctl("label"), x=10, y=20, width=25.5, height=30.25, image_size=(640, 480), label="Car"
    )
    assert _is_region_id(region.id)
    assert region.type == "rectanglelabels"
    assert region.extra == _image_extra(640, 480)
    assert region.value == {
        "x": 10.0,
        "y": 20.0,
        "width": 25.5,
        "height": 30.25,
        "rotation": 0.0,
        "rectanglelabels": ["Car"],
    }


def test_rectangle_from_xyxy_converts_pixels():
    region = results.rectangle_from_xyxy(
        ctl("label"), (64, 48, 320, 240), image_size=(640, 480), label="Person", score=0.5
    )
    value = region.value
    # 64/640 = 10 %, 48/480 = 10 %, (320-64)/640 = 40 %, (240-48)/480 = 40 %.
    assert value["x"] == pytest.approx(10.0)
    assert value["y"] == pytest.approx(10.0)
    assert value["width"] == pytest.approx(40.0)
    assert value["height"] == pytest.approx(40.0)
    assert value["rotation"] == 0.0
    assert value["rectanglelabels"] == ["Person"]
    assert region.score == 0.5
    assert region.extra == _image_extra(640, 480)


def test_rectangle_from_xyxy_accepts_numpy_and_gives_python_floats():
    region = results.rectangle_from_xyxy(
        ctl("label"),
        np.array([0, 0, 640, 480], dtype=np.float32),
        image_size=(640, 480),
        label="Car",
        score=np.float32(0.25),
    )
    assert region.value["width"] == 100.0
    assert all(type(region.value[key]) is float for key in ("x", "y", "width", "height"))
    assert type(region.score) is float


def test_rectangle_unlabelled():
    region = results.rectangle(ctl("box"), x=0, y=0, width=50, height=50, image_size=(10, 10))
    assert region.type == "rectangle"
    assert region.value == {"x": 0.0, "y": 0.0, "width": 50.0, "height": 50.0, "rotation": 0.0}


def test_rectangle_to_name_override():
    region = results.rectangle(
        ctl("label"),
        x=1,
        y=1,
        width=1,
        height=1,
        image_size=(9, 9),
        label="Car",
        to_name="image2",
        region_id="r9",
    )
    assert region.to_name == "image2"
    assert region.id == "r9"


def test_rectangle_clamps_round_off_at_the_edges():
    region = results.rectangle(
        ctl("box"), x=-0.00005, y=50, width=100.00004, height=50.00009, image_size=(10, 10)
    )
    assert region.value["x"] == 0.0
    assert region.value["width"] == 100.0
    assert region.value["height"] == 50.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": -1}, "x must be a percentage in 0..100, got -1.0"),
        ({"y": 100.5}, "y must be a percentage in 0..100, got 100.5"),
        ({"x": 60, "width": 50}, "x + width must be a percentage in 0..100, got 110.0"),
        ({"y": 60, "height": 41}, "y + height must be a percentage"),
        ({"width": 0}, "width must be > 0, got 0.0"),
        ({"height": -3}, "height must be > 0"),
        ({"x": math.inf}, "x must be finite"),
        (
            {"label": "Truck"},
            "label 'Truck' is not a label of RectangleLabels 'label' (allowed: 'Car', 'Person')",
        ),
        ({"label": None}, "RectangleLabels 'label' needs a label"),
        ({"score": 1.5}, "score must be in [0, 1], got 1.5"),
        ({"score": -0.1}, "score must be in [0, 1]"),
        ({"score": math.nan}, "score must be finite"),
        (
            {"to_name": "text"},
            "to_name 'text' is not a toName of RectangleLabels 'label' "
            "(its toName: 'image', 'image2')",
        ),
        ({"image_size": (0, 480)}, "image width must be at least 1"),
        ({"image_size": (640,)}, "image_size must be (width, height)"),
        ({"image_size": (640.0, 480)}, "image width must be an integer"),
    ],
)
def test_rectangle_errors(kwargs, message):
    base = {"x": 10, "y": 10, "width": 20, "height": 20, "image_size": (640, 480), "label": "Car"}
    with pytest.raises(ValueError, match=re.escape(message)):
        results.rectangle(ctl("label"), **{**base, **kwargs})


def test_rectangle_unlabelled_refuses_a_label():
    with pytest.raises(ValueError, match="Rectangle 'box' has no labels; pass label=None"):
        results.rectangle(ctl("box"), x=0, y=0, width=1, height=1, image_size=(9, 9), label="Car")


def test_rectangle_needs_a_rectangle_control():
    with pytest.raises(
        ValueError,
        match="rectangle\\(\\) makes results for RectangleLabels or Rectangle controls; "
        "control 'poly' is a PolygonLabels",
    ):
        results.rectangle(ctl("poly"), x=0, y=0, width=1, height=1, image_size=(9, 9))


@pytest.mark.parametrize(
    ("xyxy", "message"),
    [((10, 10, 5, 20), "x2 > x1"), ((1, 2, 3), "got 3 numbers"), ((0, 0, 700, 10), "x + width")],
)
def test_rectangle_from_xyxy_errors(xyxy, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.rectangle_from_xyxy(ctl("label"), xyxy, image_size=(640, 480), label="Car")


def test_rotated_rectangle_may_cross_the_right_edge():
    region = results.rectangle(
        ctl("box"), x=90, y=10, width=30, height=10, rotation=45, image_size=(100, 100)
    )
    assert region.value["width"] == 30.0
    assert region.value["rotation"] == 45.0
    with pytest.raises(ValueError, match="cannot be stored on a 100 x 100 image"):
        results.rectangle(
            ctl("box"), x=150, y=10, width=30, height=10, rotation=45, image_size=(100, 100)
        )


def test_rotated_rectangle_too_wide_for_a_portrait_image_turns_minus_90():
    # A 100 x 300 px portrait image; a 250 x 50 px box standing upright: its corner at
    # (90, 10) px, turned 90° clockwise, so its width runs down the image. As given, width is
    # 250 % of the image width (height 50 px is 16.67 % of 300), which LS refuses. The same
    # box is also the 50 x 250 px box at
    # 0° whose corner is (90 - 50, 10) = (40, 10) px: x 40 %, y 3.33 %, width 50 %, height
    # 83.33 % of the 300 px height.
    region = results.rectangle(
        ctl("box"), x=90, y=10 / 3, width=250, height=50 / 3, rotation=90, image_size=(100, 300)
    )
    value = region.value
    assert value["rotation"] == 0.0
    assert value["x"] == pytest.approx(40.0)
    assert value["y"] == pytest.approx(10 / 3)
    assert value["width"] == pytest.approx(50.0)
    assert value["height"] == pytest.approx(250 / 3)


def test_rotated_rectangle_longer_than_the_image_in_every_form_is_refused():
    # A 130 x 5 px box at 45° on a 100 x 100 px image fits inside it (its far corner is at
    # about (97, 94) px), but its long side is 130 % of both the width and the height, so no
    # form of it has width and height within 100.
    with pytest.raises(ValueError, match=r"a box of 130 x 5 px rotated 45° cannot be stored"):
        results.rectangle(
            ctl("box"), x=5, y=2, width=130, height=5, rotation=45, image_size=(100, 100)
        )


def test_rotation_is_normalised():
    def rotation(degrees: float) -> float:
        region = results.rectangle(
            ctl("box"), x=50, y=50, width=1, height=1, rotation=degrees, image_size=(9, 9)
        )
        return region.value["rotation"]

    assert rotation(-90) == 270.0
    assert rotation(360) == 0.0
    assert rotation(-1e-20) == 0.0


def test_rectangle_from_xywhr_quarter_turn():
    # A 40x20 box centred at (100, 100), turned 90 degrees clockwise: its x axis points down
    # (0, 1) and its y axis left (-1, 0), so its top-left corner is (100+10, 100-20).
    region = results.rectangle_from_xywhr(
        ctl("label"), 100, 100, 40, 20, math.pi / 2, image_size=(200, 200), label="Car"
    )
    value = region.value
    assert value["x"] == pytest.approx(55.0)
    assert value["y"] == pytest.approx(40.0)
    assert value["width"] == pytest.approx(20.0)
    assert value["height"] == pytest.approx(10.0)
    assert value["rotation"] == pytest.approx(90.0)
    assert region.extra == _image_extra(200, 200)


def _ultralytics_corners(cx, cy, w, h, r):
    # Ultralytics xywhr2xyxyxyxy: the box's axes are (cos r, sin r) and (-sin r, cos r).
    ax = np.array([math.cos(r), math.sin(r)]) * w / 2
    ay = np.array([-math.sin(r), math.cos(r)]) * h / 2
    centre = np.array([cx, cy])
    return [centre + ax + ay, centre + ax - ay, centre - ax - ay, centre - ax + ay]


def _ls_corners(value, width, height):
    # LS: an unrotated box at (x, y), rotated clockwise (y down) around (x, y), in pixels.
    x, y = value["x"] / 100 * width, value["y"] / 100 * height
    w, h = value["width"] / 100 * width, value["height"] / 100 * height
    t = math.radians(value["rotation"])
    rotate = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return [np.array([x, y]) + rotate @ np.array(d) for d in [(0, 0), (w, 0), (w, h), (0, h)]]


@pytest.mark.parametrize(
    ("cx", "cy", "w", "h", "r"),
    [(320, 240, 100, 50, 0.3), (300, 200, 80, 120, -0.7), (400, 300, 60, 30, 2.5)],
)
def test_rectangle_from_xywhr_matches_the_rotated_corners(cx, cy, w, h, r):
    size = (640, 480)
    region = results.rectangle_from_xywhr(
        ctl("label"), cx, cy, w, h, r, image_size=size, label="Car"
    )
    expected = _ultralytics_corners(cx, cy, w, h, r)
    actual = _ls_corners(region.value, *size)
    # Same four corners, in the same order up to where the cycle starts.
    for corner in actual:
        assert min(np.linalg.norm(corner - e) for e in expected) < 1e-9
    assert 0.0 <= region.value["rotation"] < 360.0


def test_rectangle_from_xywhr_errors():
    with pytest.raises(ValueError, match="w must be > 0"):
        results.rectangle_from_xywhr(ctl("box"), 5, 5, 0, 2, 0.0, image_size=(10, 10))
    with pytest.raises(ValueError, match="y must be a percentage"):
        results.rectangle_from_xywhr(ctl("box"), 5, 1, 4, 6, 0.0, image_size=(10, 10))


# --- polygons, keypoints, ellipses ------------------------------------------------------------


def test_polygon():
    region = results.polygon(
        ctl("poly"), [(10, 10), (50.5, 10), (30, 90)], image_size=(640, 480), label="Road"
    )
    assert _is_region_id(region.id)
    assert region.type == "polygonlabels"
    assert region.extra == _image_extra(640, 480)
    assert region.value == {
        "points": [[10.0, 10.0], [50.5, 10.0], [30.0, 90.0]],
        "closed": True,
        "polygonlabels": ["Road"],
    }


def test_polygon_from_pixels():
    region = results.polygon_from_pixels(
        ctl("outline"), np.array([[0, 0], [320, 0], [320, 120], [64, 480]]), image_size=(640, 480)
    )
    # x / 640 and y / 480, in percent.
    assert region.value == {
        "points": [[0.0, 0.0], [50.0, 0.0], [50.0, 25.0], [10.0, 100.0]],
        "closed": True,
    }
    assert region.type == "polygon"


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(0, 0), (1, 1)], "at least 3 points, got 2"),
        ([(0, 0), (1, 1), (101, 0)], "point 2 x must be a percentage"),
        ([(0, 0), (1, 1), (1, -2)], "point 2 y must be a percentage"),
        ([(0, 0), (1, 1), (1, 2, 3)], "point 2 must be (x, y)"),
    ],
)
def test_polygon_errors(points, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.polygon(ctl("poly"), points, image_size=(10, 10), label="Road")


def test_keypoint():
    region = results.keypoint(
        ctl("kp"), x=37.5, y=50, image_size=(4, 3), label="Nose", parent_id="b0", score=0.8
    )
    assert region.to_ls() == {
        "id": region.id,
        "from_name": "kp",
        "to_name": "image",
        "type": "keypointlabels",
        "original_width": 4,
        "original_height": 3,
        "image_rotation": 0,
        "parentID": "b0",
        "value": {"x": 37.5, "y": 50.0, "width": 0.5, "keypointlabels": ["Nose"]},
        "score": 0.8,
    }


def test_keypoint_from_pixels():
    region = results.keypoint_from_pixels(ctl("point"), x=1.5, y=1.5, image_size=(4, 3), width=0.32)
    # 1.5 / 4 = 37.5 %, 1.5 / 3 = 50 %.
    assert region.value == {"x": 37.5, "y": 50.0, "width": 0.32}
    assert "parentID" not in region.extra


def test_keypoint_errors():
    with pytest.raises(ValueError, match="x must be a percentage"):
        results.keypoint_from_pixels(ctl("kp"), x=5, y=1, image_size=(4, 3), label="Nose")
    with pytest.raises(ValueError, match="width must be > 0"):
        results.keypoint(ctl("kp"), x=5, y=1, image_size=(4, 3), label="Nose", width=0)


def test_ellipse():
    region = results.ellipse(
        ctl("eye"),
        x=50,
        y=40,
        radius_x=10,
        radius_y=5,
        rotation=-30,
        image_size=(8, 8),
        label="Eye",
    )
    assert region.type == "ellipselabels"
    assert region.value == {
        "x": 50.0,
        "y": 40.0,
        "radiusX": 10.0,
        "radiusY": 5.0,
        "rotation": 330.0,
        "ellipselabels": ["Eye"],
    }
    with pytest.raises(ValueError, match="radius_y must be > 0"):
        results.ellipse(
            ctl("eye"), x=50, y=40, radius_x=10, radius_y=0, image_size=(8, 8), label="Eye"
        )


# --- brush ------------------------------------------------------------------------------------


def test_brush_e5_mask():
    mask = np.zeros((3, 4), dtype=bool)  # 3 rows x 4 columns: W=4, H=3
    mask[1, 1:3] = True
    region = results.brush(ctl("tag"), mask, label="Car", image_size=(4, 3), score=0.97)
    assert region.type == "brushlabels"
    assert region.extra == _image_extra(4, 3)
    assert region.value == {
        "format": "rle",
        "rle": [0, 0, 0, 48, 57, 27, 254, 19, 0, 159, 255, 9, 128, 0],
        "brushlabels": ["Car"],
    }


def test_brush_unlabelled_takes_size_from_the_mask():
    region = results.brush(ctl("paint"), np.ones((2, 5), dtype=np.uint8))
    assert region.type == "brush"
    assert set(region.value) == {"format", "rle"}
    assert (region.extra["original_width"], region.extra["original_height"]) == (5, 2)


@pytest.mark.parametrize(
    ("mask", "kwargs", "message"),
    [
        (
            np.zeros((3, 4)),
            {"image_size": (3, 4)},
            "mask is 4x3 (width x height) but the image is 3x4",
        ),
        (np.full((2, 2), 0.7), {}, "threshold it first"),
        (np.zeros((0, 4)), {}, "mask has no pixels"),
        (np.zeros(4), {}, "must be 2-D"),
        (np.zeros((2, 2)), {"label": None}, "BrushLabels 'tag' needs a label"),
    ],
)
def test_brush_errors(mask, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.brush(ctl("tag"), mask, **{"label": "Car", **kwargs})


# --- transcriptions ---------------------------------------------------------------------------


def test_textarea_whole_object():
    region = results.textarea(ctl("summary"), ["line 1", "line 2"])
    assert region.to_ls() == {
        "from_name": "summary",
        "to_name": "text",
        "type": "textarea",
        "value": {"text": ["line 1", "line 2"]},
    }


def test_textarea_per_region_repeats_the_geometry():
    box = results.rectangle(
        ctl("label"),
        x=10,
        y=20,
        width=30,
        height=40,
        rotation=15,
        image_size=(640, 480),
        label="Car",
        to_name="image2",
        region_id="ocr1",
    )
    text = results.textarea(ctl("transcription"), ["STOP"], region=box, score=0.7)
    assert text.to_ls() == {
        "id": "ocr1",
        "from_name": "transcription",
        "to_name": "image2",
        "type": "textarea",
        "original_width": 640,
        "original_height": 480,
        "image_rotation": 0,
        "value": {
            "x": 10.0,
            "y": 20.0,
            "width": 30.0,
            "height": 40.0,
            "rotation": 15.0,
            "text": ["STOP"],
        },
        "score": 0.7,
    }


def test_textarea_per_polygon():
    outline = results.polygon(ctl("outline"), [(0, 0), (10, 0), (0, 10)], image_size=(5, 5))
    text = results.textarea(ctl("transcription"), ["A"], region=outline)
    assert text.id == outline.id
    assert text.value == {
        "points": [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
        "closed": True,
        "text": ["A"],
    }


@pytest.mark.parametrize(
    ("control", "texts", "region", "message"),
    [
        ("summary", ["x"], Region("a", "text", "labels", {}, id="1"), "transcribes whole objects"),
        ("transcription", ["x"], None, 'has perRegion="true"; pass the region='),
        ("transcription", ["x"], Region("box", "image", "rectangle", {}), "region has no id"),
        (
            "transcription",
            ["x"],
            Region("ner", "text", "labels", {}, id="1"),
            "region is on 'text', not on a toName of TextArea 'transcription'",
        ),
        ("summary", "x", None, "must be a list of strings"),
        ("summary", [], None, "texts must not be empty"),
        ("summary", [3], None, "texts must hold strings"),
        ("label", ["x"], None, "textarea() makes results for TextArea controls"),
    ],
)
def test_textarea_errors(control, texts, region, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.textarea(ctl(control), texts, region=region)


# --- whole predictions as LS JSON (protocol §13) ----------------------------------------------


def _stamped(regions: list[Region], score: float | None, version: str) -> dict:
    prediction = Prediction(result=regions, score=score)
    prediction.model_version = version
    return prediction.to_ls()


def test_e3_text_classification():
    region = dataclasses.replace(results.choices(ctl("sentiment"), ["Positive"]), id="c1")
    assert _stamped([region], 0.93, "sentiment-v1") == {
        "model_version": "sentiment-v1",
        "score": 0.93,
        "result": [
            {
                "id": "c1",
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Positive"]},
            }
        ],
    }


def test_e4_object_detection():
    config = LabelConfig.parse(
        '<View><Image name="image" value="$image"/>'
        '<RectangleLabels name="label" toName="image">'
        '<Label value="Car" predicted_values="car,truck"/><Label value="Person"/>'
        "</RectangleLabels></View>"
    )
    box = results.rectangle(
        config.control("label"),
        x=10.0,
        y=20.0,
        width=25.5,
        height=30.25,
        image_size=(640, 480),
        label="Car",
        score=0.81,
        region_id="b0",
    )
    assert _stamped([box], 0.81, "yolo-v1.0.0") == {
        "model_version": "yolo-v1.0.0",
        "score": 0.81,
        "result": [
            {
                "id": "b0",
                "from_name": "label",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": 640,
                "original_height": 480,
                "image_rotation": 0,
                "value": {
                    "x": 10.0,
                    "y": 20.0,
                    "width": 25.5,
                    "height": 30.25,
                    "rotation": 0,
                    "rectanglelabels": ["Car"],
                },
                "score": 0.81,
            }
        ],
    }
    assert _stamped([], None, "yolo-v1.0.0") == {
        "model_version": "yolo-v1.0.0",
        "score": None,
        "result": [],
    }


def test_e5_interactive_brush():
    config = LabelConfig.parse(
        '<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
        '<Label value="Car"/></BrushLabels><KeyPointLabels name="kp" toName="image" '
        'smart="true"><Label value="Car"/></KeyPointLabels></View>'
    )
    mask = np.array([[0, 0, 0, 0], [0, 255, 255, 0], [0, 0, 0, 0]], dtype=np.uint8)
    region = results.brush(config.control("tag"), mask, label="Car", score=0.97, region_id="m1")
    region = dataclasses.replace(region, extra={**region.extra, "readonly": False})
    assert _stamped([region], 0.97, "sam-v1") == {
        "model_version": "sam-v1",
        "score": 0.97,
        "result": [
            {
                "id": "m1",
                "from_name": "tag",
                "to_name": "image",
                "type": "brushlabels",
                "original_width": 4,
                "original_height": 3,
                "image_rotation": 0,
                "value": {
                    "format": "rle",
                    "rle": [0, 0, 0, 48, 57, 27, 254, 19, 0, 159, 255, 9, 128, 0],
                    "brushlabels": ["Car"],
                },
                "score": 0.97,
                "readonly": False,
            }
        ],
    }


def test_e6_ner_two_predictions():
    ner = LabelConfig.parse(
        '<View><Text name="text" value="$text"/><Labels name="ner" toName="text">'
        '<Label value="ORG"/><Label value="PER"/></Labels></View>'
    ).control("ner")
    text = "Google hired Ann"
    first = [
        results.span(
            ner,
            start=0,
            end=6,
            text="Google",
            label="ORG",
            score=0.95,
            source_text=text,
            region_id="e1",
        ),
        results.span(
            ner,
            start=13,
            end=16,
            text="Ann",
            label="PER",
            score=0.85,
            source_text=text,
            region_id="e2",
        ),
    ]
    second = [
        results.span(ner, start=0, end=6, text="Google", label="ORG", score=0.6, region_id="e3")
    ]
    google = {"start": 0, "end": 6, "text": "Google", "labels": ["ORG"]}
    common = {"from_name": "ner", "to_name": "text", "type": "labels"}
    assert [_stamped(first, 0.9, "ner-a"), _stamped(second, 0.6, "ner-b")] == [
        {
            "model_version": "ner-a",
            "score": 0.9,
            "result": [
                {"id": "e1", **common, "value": google, "score": 0.95},
                {
                    "id": "e2",
                    **common,
                    "value": {"start": 13, "end": 16, "text": "Ann", "labels": ["PER"]},
                    "score": 0.85,
                },
            ],
        },
        {
            "model_version": "ner-b",
            "score": 0.6,
            "result": [{"id": "e3", **common, "value": google, "score": 0.6}],
        },
    ]


# --- public surface ---------------------------------------------------------------------------


def test_builders_are_exported_from_prelabel_results():
    builders = {
        "Keyframe",
        "audio_span",
        "brush",
        "chat_message",
        "choices",
        "ellipse",
        "hypertext_span",
        "keypoint",
        "keypoint_from_pixels",
        "number",
        "ocr_region",
        "offsets_from_utf16",
        "pairwise",
        "paragraph_span",
        "polygon",
        "polygon_from_pixels",
        "ranker",
        "rating",
        "rectangle",
        "rectangle_from_xywhr",
        "rectangle_from_xyxy",
        "region_labels",
        "span",
        "taxonomy",
        "textarea",
        "timeline_span",
        "timeseries_span",
        "video_rectangle",
    }
    codec = {"decode_rle", "encode_rle", "mask_to_rle", "rle_to_mask"}
    assert set(results.__all__) == builders | codec | {"Prediction", "Region", "new_region_id"}
    assert all(callable(getattr(results, name)) for name in results.__all__)
