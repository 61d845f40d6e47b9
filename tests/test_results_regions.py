"""Builders for the region types LS's templates use beyond text and boxes, and the bounds LS
enforces.

Each expected value states what LS's editor saves for the same region (its region models'
``serialize``) or what label_studio_sdk's value models accept; numbers are worked by hand.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest

from prelabel import results
from prelabel.config import Control, LabelConfig
from prelabel.results import Keyframe

CONFIG = LabelConfig.parse(
    """
<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Audio name="audio" value="$audio"/>
  <Video name="video" value="$video"/>
  <TimeSeries name="ts" value="$ts" valueType="url" timeColumn="time"/>
  <TimeSeries name="dated" value="$dated" valueType="url" timeColumn="time"
              timeFormat="%Y-%m-%d %H:%M:%S"/>
  <Text name="left" value="$left"/>
  <Text name="right" value="$right"/>
  <List name="items" value="$items"/>
  <Pdf name="pdf" value="$pdf"/>
  <Chat name="chat" value="$chat"/>
  <Labels name="kind" toName="image"><Label value="Text"/><Label value="Handwriting"/></Labels>
  <Rectangle name="bbox" toName="image"/>
  <Polygon name="poly" toName="image"/>
  <RectangleLabels name="objects" toName="image" value="$objects"/>
  <Ellipse name="blob" toName="image"/>
  <TextArea name="transcription" toName="image" perRegion="true"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Choices name="entity_kind" toName="text" perRegion="true"><Choice value="Real"/><Choice value="Fictional"/></Choices>
  <Rating name="confidence" toName="text" perRegion="true" maxRating="3"/>
  <Labels name="speech" toName="audio"><Label value="Speech"/><Label value="Noise"/></Labels>
  <TextArea name="said" toName="audio" perRegion="true" whenTagName="speech" whenLabelValue="Speech"/>
  <Choices name="topic" toName="text"><Choice value="News"/></Choices>
  <Choices name="options" toName="text" value="$options" choice="multiple"/>
  <TimeSeriesLabels name="activity" toName="ts"><Label value="Run"/></TimeSeriesLabels>
  <TimeSeriesLabels name="events" toName="dated"><Label value="Spike"/></TimeSeriesLabels>
  <TimelineLabels name="moments" toName="video"><Label value="Goal"/></TimelineLabels>
  <Labels name="tracks" toName="video"><Label value="Car"/></Labels>
  <VideoRectangle name="box" toName="video"/>
  <Pairwise name="better" toName="left,right"/>
  <Ranker name="order" toName="items"/>
  <Ranker name="sorted" toName="items">
    <Bucket name="good" title="Good"/><Bucket name="bad" title="Bad"/>
  </Ranker>
  <OcrLabels name="ocr" toName="pdf"><Label value="Typo"/></OcrLabels>
  <Choices name="tone" toName="chat" perRegion="true"><Choice value="Polite"/></Choices>
</View>
"""
)
SIZE = (200, 100)


def ctl(name: str) -> Control:
    return CONFIG.control(name)


# --- the bounds LS enforces ---------------------------------------------------------------------


def test_ellipse_radii_are_capped_at_50() -> None:
    region = results.ellipse(ctl("blob"), x=50, y=50, radius_x=50, radius_y=10, image_size=SIZE)
    assert region.value["radiusX"] == 50.0
    with pytest.raises(ValueError, match=re.escape("radius_x must be at most 50")):
        results.ellipse(ctl("blob"), x=50, y=50, radius_x=50.5, radius_y=10, image_size=SIZE)
    with pytest.raises(ValueError, match=re.escape("radius_y must be at most 50")):
        results.ellipse(ctl("blob"), x=50, y=50, radius_x=5, radius_y=60, image_size=SIZE)


def test_video_rectangle_sides_are_capped_at_100() -> None:
    common = {"label": "Car", "frames_count": 10, "duration": 1.0, "framerate": 10.0}
    ok = results.video_rectangle(ctl("box"), ctl("tracks"), [Keyframe(1, 0, 0, 100, 100)], **common)
    assert ok.value["sequence"][0]["width"] == 100.0
    for wide in (Keyframe(1, 0, 0, 120, 10), Keyframe(1, 0, 0, 10, 100.5)):
        with pytest.raises(ValueError, match=re.escape("must be a percentage in 0..100")):
            results.video_rectangle(ctl("box"), ctl("tracks"), [wide], **common)


# --- per-region classifications -----------------------------------------------------------------


def test_per_region_choices_and_rating_attach_to_a_span() -> None:
    span = results.span(ctl("ner"), start=0, end=3, text="Ann", label="PER", region_id="s1")
    kind = results.choices(ctl("entity_kind"), ["Real"], region=span, score=0.7)
    stars = results.rating(ctl("confidence"), 2, region=span)
    # Same id, object and span as the region; its own key instead of the span's labels.
    assert kind.to_ls() == {
        "id": "s1",
        "from_name": "entity_kind",
        "to_name": "text",
        "type": "choices",
        "value": {"start": 0, "end": 3, "text": "Ann", "choices": ["Real"]},
        "score": 0.7,
    }
    assert stars.to_ls() == {
        "id": "s1",
        "from_name": "confidence",
        "to_name": "text",
        "type": "rating",
        "value": {"start": 0, "end": 3, "text": "Ann", "rating": 2},
    }


def test_per_region_controls_refuse_whole_object_results_and_the_reverse() -> None:
    span = results.span(ctl("ner"), start=0, end=3, text="Ann", label="PER")
    with pytest.raises(ValueError, match=re.escape("'entity_kind' has perRegion=\"true\"; pass")):
        results.choices(ctl("entity_kind"), ["Real"])
    with pytest.raises(ValueError, match=re.escape("'confidence' has perRegion=\"true\"; pass")):
        results.rating(ctl("confidence"), 2)
    with pytest.raises(ValueError, match="'topic' classifies whole objects"):
        results.choices(ctl("topic"), ["News"], region=span)


def test_per_region_results_check_the_region() -> None:
    box = results.rectangle(ctl("bbox"), x=1, y=1, width=5, height=5, image_size=SIZE)
    with pytest.raises(ValueError, match="region is on 'image', not on a toName of Choices"):
        results.choices(ctl("entity_kind"), ["Real"], region=box)
    span = results.span(ctl("ner"), start=0, end=3, text="Ann", label="PER")
    kind = results.choices(ctl("entity_kind"), ["Real"], region=span)
    with pytest.raises(ValueError, match="region is a choices result; attach"):
        results.rating(ctl("confidence"), 1, region=kind)


def test_when_label_value_limits_the_regions() -> None:
    speech = results.audio_span(ctl("speech"), start=0, end=2, label="Speech", region_id="a1")
    said = results.textarea(ctl("said"), ["hello"], region=speech)
    assert said.value == {"start": 0.0, "end": 2.0, "channel": 0, "text": ["hello"]}
    noise = results.audio_span(ctl("speech"), start=3, end=4, label="Noise")
    with pytest.raises(ValueError, match=r'whenLabelValue="Speech": LS drops it'):
        results.textarea(ctl("said"), ["hello"], region=noise)


def test_per_region_result_on_a_chat_message() -> None:
    message = results.chat_message(ctl("chat"), role="assistant", content="Hi!", region_id="m1")
    tone = results.choices(ctl("tone"), ["Polite"], region=message)
    assert tone.to_ls() == {
        "id": "m1",
        "from_name": "tone",
        "to_name": "chat",
        "type": "choices",
        "value": {"chatmessage": {"role": "assistant", "content": "Hi!"}, "choices": ["Polite"]},
    }


# --- labels of an image tool's region (the OCR template's split format) -------------------------


def test_region_labels_repeat_the_geometry_with_the_label() -> None:
    box = results.rectangle(
        ctl("bbox"), x=10, y=20, width=30, height=40, image_size=SIZE, region_id="r1"
    )
    label = results.region_labels(ctl("kind"), box, "Handwriting", score=0.9)
    text = results.textarea(ctl("transcription"), ["Dear Sir"], region=box)
    geometry = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0.0}
    image = {"original_width": 200, "original_height": 100, "image_rotation": 0}
    assert box.to_ls() == {
        "id": "r1",
        "from_name": "bbox",
        "to_name": "image",
        "type": "rectangle",
        **image,
        "value": geometry,
    }
    assert label.to_ls() == {
        "id": "r1",
        "from_name": "kind",
        "to_name": "image",
        "type": "labels",
        **image,
        "value": {**geometry, "labels": ["Handwriting"]},
        "score": 0.9,
    }
    assert text.value == {**geometry, "text": ["Dear Sir"]}
    polygon = results.polygon(ctl("poly"), [(0, 0), (10, 0), (0, 10)], image_size=SIZE)
    assert results.region_labels(ctl("kind"), polygon, "Text").value["points"] == [
        [0.0, 0.0],
        [10.0, 0.0],
        [0.0, 10.0],
    ]


def test_region_labels_errors() -> None:
    box = results.rectangle(ctl("bbox"), x=1, y=1, width=5, height=5, image_size=SIZE)
    with pytest.raises(ValueError, match="label 'Cat' is not a label of Labels 'kind'"):
        results.region_labels(ctl("kind"), box, "Cat")
    labelled = results.rectangle(
        ctl("objects"), x=1, y=1, width=5, height=5, image_size=SIZE, label="car"
    )
    with pytest.raises(ValueError, match="labels regions of unlabelled image tools"):
        results.region_labels(ctl("kind"), labelled, "Text")
    with pytest.raises(ValueError, match=r"region_labels\(\) makes results for Labels controls"):
        results.region_labels(ctl("bbox"), box, "Text")


# --- dynamic labels ---------------------------------------------------------------------------------


def test_builders_accept_any_label_from_task_data() -> None:
    box = results.rectangle(
        ctl("objects"), x=1, y=1, width=5, height=5, image_size=SIZE, label="giraffe"
    )
    assert box.value["rectanglelabels"] == ["giraffe"]
    assert results.choices(ctl("options"), ["a", "b"]).value == {"choices": ["a", "b"]}
    with pytest.raises(ValueError, match="labels from task data"):
        results.rectangle(ctl("objects"), x=1, y=1, width=5, height=5, image_size=SIZE, label="")


# --- time series, timelines ------------------------------------------------------------------


def test_timeseries_span_in_time_column_units() -> None:
    region = results.timeseries_span(ctl("activity"), start=1.5, end=4, label="Run", region_id="t")
    assert region.to_ls() == {
        "id": "t",
        "from_name": "activity",
        "to_name": "ts",
        "type": "timeserieslabels",
        "value": {"start": 1.5, "end": 4.0, "instant": False, "timeserieslabels": ["Run"]},
    }
    instant = results.timeseries_span(ctl("activity"), start=2, end=2, label="Run")
    assert instant.value["instant"] is True


def test_timeseries_span_with_a_time_format() -> None:
    # With timeFormat LS saves times as strings in that format.
    region = results.timeseries_span(
        ctl("events"),
        start=datetime(2024, 5, 1, 12, 0, 0),
        end="2024-05-01 12:30:00",
        label="Spike",
    )
    assert (region.value["start"], region.value["end"]) == (
        "2024-05-01 12:00:00",
        "2024-05-01 12:30:00",
    )
    with pytest.raises(ValueError, match="in the TimeSeries' timeFormat"):
        results.timeseries_span(ctl("events"), start=3.0, end=4.0, label="Spike")
    with pytest.raises(ValueError, match=r"must be a number .* when the TimeSeries has no"):
        results.timeseries_span(ctl("activity"), start="2024", end="2025", label="Run")
    with pytest.raises(ValueError, match="need start <= end"):
        results.timeseries_span(ctl("activity"), start=5, end=4, label="Run")


def test_timeline_span_in_frames() -> None:
    region = results.timeline_span(ctl("moments"), start=3, end=7, label="Goal", region_id="v")
    assert region.to_ls() == {
        "id": "v",
        "from_name": "moments",
        "to_name": "video",
        "type": "timelinelabels",
        "value": {"ranges": [{"start": 3, "end": 7}], "timelinelabels": ["Goal"]},
    }
    with pytest.raises(ValueError, match="start must be at least 1"):
        results.timeline_span(ctl("moments"), start=0, end=7, label="Goal")
    with pytest.raises(ValueError, match="need start <= end"):
        results.timeline_span(ctl("moments"), start=8, end=7, label="Goal")


# --- comparisons ---------------------------------------------------------------------------------


def test_pairwise() -> None:
    assert results.pairwise(ctl("better"), "right", score=0.6).to_ls() == {
        "from_name": "better",
        "to_name": "left",
        "type": "pairwise",
        "value": {"selected": "right"},
        "score": 0.6,
    }
    with pytest.raises(ValueError, match='selected must be "left" or "right"'):
        results.pairwise(ctl("better"), "none")  # type: ignore[arg-type]


def test_ranker_without_buckets_orders_the_list() -> None:
    assert results.ranker(ctl("order"), ["3", "1", "2"]).to_ls() == {
        "from_name": "order",
        "to_name": "items",
        "type": "ranker",
        "value": {"ranker": {"order": ["3", "1", "2"]}},
    }


def test_ranker_with_buckets() -> None:
    region = results.ranker(ctl("sorted"), {"good": ["1"], "bad": ["3", "2"], "_": ["4"]})
    assert region.value == {"ranker": {"good": ["1"], "bad": ["3", "2"], "_": ["4"]}}


@pytest.mark.parametrize(
    ("control", "ranking", "message"),
    [
        ("sorted", ["1"], "sorts items into buckets ('good', 'bad')"),
        ("order", {"good": ["1"]}, "has no <Bucket>s"),
        ("sorted", {"ugly": ["1"]}, "['ugly'] are not buckets of Ranker 'sorted'"),
        ("sorted", {"good": ["1"], "bad": ["1"]}, "item '1' is ranked twice"),
        ("sorted", {"good": []}, "ranking places no item"),
        ("order", [], "ranking must not be empty"),
    ],
)
def test_ranker_errors(control: str, ranking: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        results.ranker(ctl(control), ranking)  # type: ignore[arg-type]


# --- OCR on PDF pages, chat messages -------------------------------------------------------


def test_ocr_region() -> None:
    region = results.ocr_region(
        ctl("ocr"),
        x=10,
        y=20,
        width=30,
        height=5,
        label="Typo",
        page_index=2,
        text="recieve",
        region_id="o1",
    )
    assert region.to_ls() == {
        "id": "o1",
        "from_name": "ocr",
        "to_name": "pdf",
        "type": "ocrlabels",
        "value": {
            "x": 10.0,
            "y": 20.0,
            "width": 30.0,
            "height": 5.0,
            "rotation": 0.0,
            "pageIndex": 2,
            "ocrtext": "recieve",
            "ocrlabels": ["Typo"],
        },
    }
    with pytest.raises(ValueError, match="x \\+ width must be a percentage"):
        results.ocr_region(ctl("ocr"), x=90, y=0, width=20, height=5, label="Typo", page_index=0)


def test_chat_message() -> None:
    region = results.chat_message(
        ctl("chat"), role="user", content="Where is my order?", created_at=1700000000000
    )
    assert region.from_name == region.to_name == "chat"
    assert region.type == "chatmessage"
    assert region.value == {
        "chatmessage": {
            "role": "user",
            "content": "Where is my order?",
            "createdAt": 1700000000000,
        }
    }
    assert region.id is not None
    with pytest.raises(ValueError, match="content must be a non-empty string"):
        results.chat_message(ctl("chat"), role="user", content=" ")
    with pytest.raises(ValueError, match=r"chat_message\(\) makes results for Chat controls"):
        results.chat_message(ctl("ner"), role="user", content="hi")


def test_brush_mask_can_carry_split_labels() -> None:
    paint = LabelConfig.parse(
        '<View><Image name="i" value="$i"/><Brush name="b" toName="i"/>'
        '<Labels name="l" toName="i"><Label value="Sky"/></Labels></View>'
    )
    mask = np.zeros((2, 3), dtype=np.uint8)
    mask[0, 1] = 1
    brush = results.brush(paint.control("b"), mask)
    labels = results.region_labels(paint.control("l"), brush, "Sky")
    assert labels.value == {"format": "rle", "rle": brush.value["rle"], "labels": ["Sky"]}
    assert (labels.extra["original_width"], labels.extra["original_height"]) == (3, 2)
