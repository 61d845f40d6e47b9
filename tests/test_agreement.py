"""Agreement between predictions and annotations, per region type (values by hand)."""

import pytest

from prelabel import results as R
from prelabel.config import LabelConfig
from prelabel.metrics.agreement import agreement, box_iou, region_box
from prelabel.results import mask_to_rle


def choice(*labels, name="c"):
    return {
        "from_name": name,
        "to_name": "t",
        "type": "choices",
        "value": {"choices": list(labels)},
    }


def box(x, y, w, h, label="Car"):
    return {
        "from_name": "b",
        "to_name": "i",
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label]},
    }


def span(start, end, label):
    return {
        "from_name": "ner",
        "to_name": "t",
        "type": "labels",
        "value": {"start": start, "end": end, "labels": [label]},
    }


def brush(mask, label="Fg"):
    return {
        "from_name": "m",
        "to_name": "i",
        "type": "brushlabels",
        "original_width": len(mask[0]),
        "original_height": len(mask),
        "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": [label]},
    }


def test_choices_jaccard():
    assert agreement([choice("A")], [choice("A")]) == 1.0
    assert agreement([choice("A")], [choice("B")]) == 0.0
    assert agreement([choice("A", "B")], [choice("A")]) == pytest.approx(0.5)


def test_both_empty_agree_and_one_empty_does_not():
    assert agreement([], []) == 1.0
    assert agreement([], [choice("A")]) == 0.0


def test_box_iou_and_matching():
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    # IoU 0.81 matches; a wrong label does not; one missed box halves recall.
    assert agreement([box(0, 0, 10, 10)], [box(0, 0, 9, 9)]) == 1.0
    assert agreement([box(0, 0, 10, 10, "Car")], [box(0, 0, 10, 10, "Bus")]) == 0.0
    assert agreement(
        [box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(50, 50, 10, 10)]
    ) == pytest.approx(2 / 3)


def test_spans_need_exact_offsets_and_label():
    truth = [span(0, 6, "ORG"), span(13, 16, "PER")]
    assert agreement(truth, truth) == 1.0
    assert agreement([span(0, 6, "ORG"), span(13, 15, "PER")], truth) == pytest.approx(0.5)


def test_mask_iou():
    a = [[1, 1, 0, 0]] * 2
    b = [[1, 0, 0, 0]] * 2
    assert agreement([brush(a)], [brush(b)]) == pytest.approx(0.5)


def test_mean_over_controls():
    assert agreement([choice("A"), box(0, 0, 10, 10)], [choice("A")]) == pytest.approx(0.5)


def test_a_rotated_rectangle_is_compared_by_its_hull_in_pixels():
    value = {"x": 10.0, "y": 10.0, "width": 20.0, "height": 10.0, "rotation": 90}
    # Square image: 90 degrees clockwise around (10, 10) puts the box left of that corner.
    assert region_box({"value": value}) == pytest.approx((0.0, 10.0, 10.0, 20.0))
    # 200 x 100 px: 40 x 10 px at (20, 10) px turns into x 10..20 px, y 10..50 px.
    size = {"original_width": 200, "original_height": 100}
    assert region_box({"value": value, **size}) == pytest.approx((5.0, 10.0, 5.0, 40.0))
    assert region_box({"value": {**value, "rotation": 360}}) == (10.0, 10.0, 20.0, 10.0)

    rotated = box(10, 10, 20, 10)
    rotated["value"]["rotation"] = 90
    assert agreement([box(5, 10, 5, 40)], [{**rotated, **size}]) == 1.0
    assert agreement([box(10, 10, 20, 10)], [{**rotated, **size}]) == 0.0


def test_a_rotated_ellipse_is_compared_by_the_box_around_its_outline():
    # radiusX 20 %, radiusY 10 % of a square image, turned 90 degrees: 20 wide, 40 high.
    value = {"x": 50.0, "y": 50.0, "radiusX": 20.0, "radiusY": 10.0, "rotation": 90}
    assert region_box({"value": value}) == pytest.approx((40.0, 30.0, 20.0, 40.0))
    # On a 200 x 100 px image the radii are 40 px and 10 px; turned 90 degrees the ellipse
    # is 20 px (10 %) wide and 80 px (80 %) high.
    size = {"original_width": 200, "original_height": 100}
    assert region_box({"value": value, **size}) == pytest.approx((45.0, 10.0, 10.0, 80.0))
    # 45 degrees on a square image: both half extents are sqrt((20² + 10²) / 2).
    half = ((20**2 + 10**2) / 2) ** 0.5
    turned = region_box({"value": {**value, "rotation": 45}})
    assert turned == pytest.approx((50 - half, 50 - half, 2 * half, 2 * half))


# --- offsets as LS stores them -------------------------------------------------------------------

SPAN_CONFIG = LabelConfig.parse(
    '<View><Text name="t" value="$t"/><Labels name="ner" toName="t"><Label value="PER"/>'
    "</Labels></View>"
)


def test_a_predicted_span_agrees_with_the_annotation_ls_saves_after_an_emoji():
    text = "😀😀😀 Ann and Bob"
    predicted = R.span(
        SPAN_CONFIG.control("ner"), start=12, end=15, label="PER", source_text=text
    ).to_ls()
    # What LS's editor saves for "Bob" selected by hand: code points 12..15 (counted: three
    # emoji 0-2, " Ann and " 3-11).
    annotated = {**span(12, 15, "PER"), "value": {"start": 12, "end": 15, "labels": ["PER"]}}
    assert agreement([predicted], [annotated]) == 1.0
    # The same span in UTF-16 units (15..18) is another span.
    assert agreement([span(15, 18, "PER")], [annotated]) == 0.0


def paragraph(start, end, start_offset, end_offset, label="Q"):
    value = {"start": start, "end": end, "startOffset": start_offset, "endOffset": end_offset}
    return {
        "from_name": "p",
        "to_name": "d",
        "type": "paragraphlabels",
        "value": {**value, "paragraphlabels": [label]},
    }


def test_paragraph_spans_compare_their_offsets_within_phrases():
    truth = [paragraph("1", "1", 0, 5)]
    assert agreement([paragraph("1", "1", 0, 5)], truth) == 1.0
    # Same phrase, other words: not the same span (offsets used to be ignored).
    assert agreement([paragraph("1", "1", 6, 9)], truth) == 0.0
    # A tool writing phrase indices as numbers means the same phrase.
    assert agreement([paragraph(1, 1, 0, 5)], truth) == 1.0


def segment(start, end, label="Speech", kind="labels", extra=None):
    return {
        "from_name": "s",
        "to_name": "a",
        "type": kind,
        "value": {"start": start, "end": end, **(extra or {"channel": 0}), kind: [label]},
    }


def test_segments_of_time_match_by_overlap():
    truth = [segment(1.0, 3.0)]
    # Seconds never match to the float: 1.05..3.0 overlaps 1.0..3.0 by 97.5 %.
    assert agreement([segment(1.05, 3.0)], truth) == 1.0
    assert agreement([segment(2.5, 5.0)], truth) == 0.0  # IoU 0.5 / 4 = 0.125
    assert agreement([segment(1.0, 3.0, "Noise")], truth) == 0.0
    series = [segment(10, 20, "Run", "timeserieslabels", {"instant": False})]
    assert (
        agreement([segment(11, 20, "Run", "timeserieslabels", {"instant": False})], series) == 1.0
    )


def test_timeline_frames_match_by_overlap():
    def frames(start, end):
        value = {"ranges": [{"start": start, "end": end}], "timelinelabels": ["Goal"]}
        return {"from_name": "m", "to_name": "v", "type": "timelinelabels", "value": value}

    # Frames are inclusive: 3..7 and 4..7 share 4 of 5 frames.
    assert agreement([frames(4, 7)], [frames(3, 7)]) == 1.0
    assert agreement([frames(8, 9)], [frames(3, 7)]) == 0.0


def test_split_format_labels_compare_as_regions():
    def labelled(x, label):
        value = {"x": x, "y": 0, "width": 10, "height": 10, "rotation": 0, "labels": [label]}
        return {"from_name": "l", "to_name": "i", "type": "labels", "value": value}

    assert agreement([labelled(1, "Text")], [labelled(0, "Text")]) == 1.0
    assert agreement([labelled(0, "Text")], [labelled(0, "Handwriting")]) == 0.0
