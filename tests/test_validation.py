"""``prelabel.validation``: the rules LS 1.23.2 applies to a prediction's results.

Each case names the rule and where LS has it: label_studio_sdk 2.1.2's ``LabelInterface``
(what LS's prediction validation refuses) or LS's editor (what it cannot display or drops).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from prelabel import results as R
from prelabel.config import LabelConfig
from prelabel.validation import region_problems, result_problems

CONFIG = LabelConfig.parse(
    """
<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Video name="video" value="$video"/>
  <TimeSeries name="ts" value="$ts" valueType="url"/>
  <List name="items" value="$items"/>
  <Chat name="chat" value="$chat"/>
  <Text name="other" value="$other"/>
  <RectangleLabels name="objects" toName="image"><Label value="Car"/></RectangleLabels>
  <Rectangle name="bbox" toName="image"/>
  <Labels name="kind" toName="image"><Label value="Text"/></Labels>
  <EllipseLabels name="eyes" toName="image"><Label value="Eye"/></EllipseLabels>
  <PolygonLabels name="areas" toName="image"><Label value="Road"/></PolygonLabels>
  <BrushLabels name="mask" toName="image"><Label value="Sky"/></BrushLabels>
  <TextArea name="ocr" toName="image" perRegion="true"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Choices name="sentiment" toName="text"><Choice value="Pos"/><Choice value="Neg"/></Choices>
  <Choices name="dynamic" toName="text" value="$options"/>
  <Choices name="entity" toName="text" perRegion="true"><Choice value="Real"/></Choices>
  <Rating name="stars" toName="text" maxRating="3"/>
  <TextArea name="summary" toName="text"/>
  <TimeSeriesLabels name="activity" toName="ts"><Label value="Run"/></TimeSeriesLabels>
  <TimelineLabels name="moments" toName="video"><Label value="Goal"/></TimelineLabels>
  <Labels name="tracks" toName="video"><Label value="Car"/></Labels>
  <VideoRectangle name="box" toName="video"/>
  <Pairwise name="better" toName="text,other"/>
  <Ranker name="order" toName="items"><Bucket name="good"/></Ranker>
</View>
"""
)
TEXT = "😀😀😀 Ann and Bob"
DATA = {"text": TEXT, "options": ["maybe", "sure"]}
SIZE = (40, 20)


def ctl(name: str) -> Any:
    return CONFIG.control(name)


def valid_result() -> list[dict[str, Any]]:
    """One result of every kind, as the builders make it (ids fixed for the cases below)."""
    box = R.rectangle(ctl("bbox"), x=10, y=10, width=20, height=20, image_size=SIZE, region_id="b")
    bob = R.span(ctl("ner"), start=12, end=15, label="PER", source_text=TEXT, region_id="s")
    regions = [
        R.rectangle(
            ctl("objects"), x=0, y=0, width=50, height=50, label="Car", image_size=SIZE,
            region_id="r",
        ),
        box,
        R.region_labels(ctl("kind"), box, "Text"),
        R.textarea(ctl("ocr"), ["hello"], region=box),
        R.ellipse(ctl("eyes"), x=50, y=50, radius_x=50, radius_y=10, image_size=SIZE, label="Eye"),
        R.polygon(ctl("areas"), [(0, 0), (10, 0), (0, 10)], image_size=SIZE, label="Road"),
        R.brush(ctl("mask"), [[0, 1], [1, 0]], label="Sky"),
        bob,
        R.choices(ctl("entity"), ["Real"], region=bob),
        R.choices(ctl("sentiment"), ["Pos"]),
        R.choices(ctl("dynamic"), ["sure"]),
        R.rating(ctl("stars"), 3),
        R.textarea(ctl("summary"), ["short"]),
        R.timeseries_span(ctl("activity"), start=1, end=2, label="Run"),
        R.timeline_span(ctl("moments"), start=1, end=4, label="Goal"),
        R.video_rectangle(
            ctl("box"), ctl("tracks"), [R.Keyframe(1, 0, 0, 100, 100)], label="Car",
            frames_count=5, duration=1.0, framerate=5.0,
        ),
        R.pairwise(ctl("better"), "left"),
        R.ranker(ctl("order"), {"good": ["1"], "_": ["2"]}),
        R.chat_message(ctl("chat"), role="user", content="hi", region_id="m"),
    ]  # fmt: skip
    relation = {"type": "relation", "from_id": "s", "to_id": "r", "direction": "right"}
    return [*(region.to_ls() for region in regions), relation]


def test_builder_output_is_valid() -> None:
    assert result_problems(valid_result(), CONFIG, DATA) == []


def _at(result: list[dict[str, Any]], from_name: str, type_: str | None = None) -> dict[str, Any]:
    return next(
        item
        for item in result
        if item.get("from_name") == from_name and type_ in (None, item.get("type"))
    )


# (rule, where LS has it, the change, the problem reported)
CASES = [
    ("from_name is a control", "sdk", ("objects", "from_name", "nope"), "is not a control"),
    (
        "to_name is an object of the control",
        "sdk",
        ("objects", "to_name", "text"),
        "to_name 'text'",
    ),
    ("type is the control's", "sdk", ("objects", "type", "rectangle"), "does not match control"),
    ("labels are the control's", "sdk", ("objects", "value.rectanglelabels", ["Bus"]), "['Bus']"),
    ("a label list is not empty", "editor", ("objects", "value.rectanglelabels", []), "non-empty"),
    ("x is at most 100", "sdk", ("objects", "value.x", 150), "value.x = 150"),
    ("x is at least 0", "editor", ("objects", "value.x", -1), "value.x = -1"),
    ("an unrotated box stays inside", "editor", ("objects", "value.x", 60), "x + width"),
    ("a rotated box is within 100", "sdk", ("objects", "value.width", 101), "value.width = 101"),
    ("ellipse radii are at most 50", "sdk", ("eyes", "value.radiusX", 50.5), "value.radiusX"),
    ("a polygon has 3 points", "editor", ("areas", "value.points", [[0, 0], [1, 1]]), "at least 3"),
    (
        "polygon points are percent",
        "sdk",
        ("areas", "value.points", [[0, 0], [0, 101], [5, 5]]),
        "[0, 101]",
    ),
    ("rle is bytes", "sdk", ("mask", "value.rle", [300]), "value.rle"),
    ("a mask has its image size", "editor", ("mask", "original_width", None), "original_width"),
    ("a mask is the image's size", "editor", ("mask", "original_width", 3), "not 3x2x4"),
    (
        "single choice is one choice",
        "editor",
        ("sentiment", "value.choices", ["Pos", "Neg"]),
        "single-choice",
    ),
    ("choices are the control's", "sdk", ("sentiment", "value.choices", ["Meh"]), "['Meh']"),
    ("rating within maxRating", "sdk", ("stars", "value.rating", 4), "[0, 3]"),
    ("rating is an integer", "sdk", ("stars", "value.rating", 2.5), "integer"),
    ("textarea text is a list", "sdk", ("summary", "value.text", "short"), "list of strings"),
    ("time series needs instant", "sdk", ("activity", "value.instant", None), "instant"),
    ("timeline needs ranges", "sdk", ("moments", "value.ranges", []), "non-empty list"),
    (
        "video keyframes within 100",
        "sdk",
        (
            "box",
            "value.sequence",
            [{"frame": 1, "time": 0, "x": 0, "y": 0, "width": 120, "height": 9}],
        ),
        "keyframe 1",
    ),
    (
        "pairwise is left or right",
        "editor",
        ("better", "value.selected", "none"),
        "'left' or 'right'",
    ),
    ("ranker columns are buckets", "editor", ("order", "value.ranker", {"bad": ["1"]}), "['bad']"),
    (
        "a chat message has content",
        "sdk",
        ("chat", "value.chatmessage", {"role": "user"}),
        "chatmessage",
    ),
    ("a chat's results are chatmessages", "editor", ("chat", "type", "chat"), "does not match"),
    ("score is in [0, 1]", "sdk", ("sentiment", "score", 1.5), "outside [0, 1]"),
    ("value is an object", "sdk", ("summary", "value", ["x"]), "value must be an object"),
]


def _change(result: list[dict[str, Any]], target: str, key: str, new: Any) -> None:
    item = _at(result, target)
    holder, field = (item["value"], key[6:]) if key.startswith("value.") else (item, key)
    if new is None:
        del holder[field]
    else:
        holder[field] = new


@pytest.mark.parametrize(
    ("change", "message"), [c[2:] for c in CASES], ids=[f"{c[1]}: {c[0]}" for c in CASES]
)
def test_each_rule(change: tuple[str, str, Any], message: str) -> None:
    result = valid_result()
    _change(result, *change)
    problems = result_problems(result, CONFIG, DATA)
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_span_text_must_be_the_code_points_it_covers() -> None:
    # LS stores Text offsets as code points: with the task's text, the span's text is
    # text[start:end]. "Bob" at its UTF-16 offsets 15..18 covers nothing of the text.
    result = valid_result()
    span = _at(result, "ner")
    span["value"].update(start=15, end=18)
    [problem] = result_problems(result, CONFIG, DATA)
    assert "span 15..18 is outside the 15-character text" in problem
    span["value"].update(start=11, end=14)
    [problem] = result_problems(result, CONFIG, DATA)
    assert "covers ' Bo', not 'Bob' (offsets are code points" in problem
    # Without the task's data the offsets cannot be checked.
    assert result_problems(result, CONFIG) == []


def test_labels_from_task_data() -> None:
    result = valid_result()
    _at(result, "dynamic")["value"]["choices"] = ["never"]
    # LS accepts any label on a control whose labels come from the task...
    assert result_problems(result, CONFIG) == []
    # ...but the task offers only its own.
    [problem] = result_problems(result, CONFIG, DATA)
    assert "['never'] are not among the task's labels for dynamic" in problem


def test_per_region_results_need_their_region() -> None:
    result = valid_result()
    entity = _at(result, "entity")
    # Without the region's value the editor reads it as a whole-object choice.
    broken = copy.deepcopy(result)
    _at(broken, "entity")["value"] = {"choices": ["Real"]}
    [problem] = result_problems(broken, CONFIG, DATA)
    assert 'entity has perRegion="true": its result needs the id' in problem
    # An id that no region of the list has.
    entity["id"] = "gone"
    [problem] = result_problems(result, CONFIG, DATA)
    assert "result 'gone' describes no region" in problem


def test_a_whole_object_control_does_not_attach_to_regions() -> None:
    result = valid_result()
    sentiment = _at(result, "sentiment")
    sentiment.update(id="s", value={"start": 12, "end": 15, "text": "Bob", "choices": ["Pos"]})
    [problem] = result_problems(result, CONFIG, DATA)
    assert "sentiment is not perRegion but its result carries a region's value" in problem


def test_split_format_labels_need_their_tool_region() -> None:
    result = [item for item in valid_result() if item.get("from_name") != "bbox"]
    problems = result_problems(result, CONFIG, DATA)
    assert any("labels no region of an image tool" in p for p in problems), problems


def test_results_of_one_region_are_on_one_object() -> None:
    result = valid_result()
    _at(result, "kind")["to_name"] = "image"
    _at(result, "ocr")["id"] = "s"  # the TextArea now claims the text span's id
    problems = result_problems(result, CONFIG, DATA)
    assert any("results with id 's' are on different objects" in p for p in problems), problems


@pytest.mark.parametrize(
    ("relation", "message"),
    [
        ({"from_id": "s", "to_id": "gone", "direction": "right"}, "to_id 'gone' is no region"),
        ({"from_id": "s", "to_id": "r", "direction": "up"}, "direction 'up'"),
    ],
)
def test_relations_join_regions_of_the_list(relation: dict[str, str], message: str) -> None:
    result = [*valid_result()[:-1], {"type": "relation", **relation}]
    [problem] = result_problems(result, CONFIG, DATA)
    assert message in problem


def test_region_problems_alone_checks_one_item() -> None:
    # The conformance kit checks items one by one: rules between items need the list.
    entity = _at(valid_result(), "entity")
    assert region_problems(entity, CONFIG) == []
    entity["value"]["choices"] = ["Fake"]
    assert region_problems(entity, CONFIG) == [
        "labels ['Fake'] are not in entity's labels ['Real']"
    ]
    assert region_problems({"type": "relation", "from_id": "x"}, CONFIG) == []
    assert region_problems({"from_name": "objects"}, CONFIG) == ["to_name, type, value missing"]


def test_result_must_be_a_list_of_objects() -> None:
    assert result_problems("nope", CONFIG) == ["result must be a list"]  # type: ignore[arg-type]
    assert result_problems([3], CONFIG) == ["result[0]: must be an object, got 3"]  # type: ignore[list-item]
