"""Agreement between predictions and annotations, per region type (values by hand)."""

import pytest

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
