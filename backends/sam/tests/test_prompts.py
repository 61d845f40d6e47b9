"""The editor's smart regions become SAM prompts: clicks, boxes, combinations, labels."""

from __future__ import annotations

import pytest

from prelabel_sam.prompts import Click, object_prompts
from prelabel_sam.synthetic import click, rectangle


def test_clicks_alone_make_one_object_with_the_first_positive_label():
    items = [
        click(10, 20, positive=False, label="Person"),
        click(30, 40, label="Car"),
        click(50, 60, label="Person"),
    ]
    (obj,) = object_prompts(items)
    assert obj.image == "image" and obj.box is None and obj.label == "Car"
    assert obj.clicks == [
        Click(10, 20, False, "Person"),
        Click(30, 40, True, "Car"),
        Click(50, 60, True, "Person"),
    ]
    # Percent of a 200 x 100 image, in pixels; SAM's labels are 1 (positive) and 0.
    assert obj.points_px(200, 100) == ([[20.0, 20.0], [60.0, 40.0], [100.0, 60.0]], [0, 1, 1])


def test_negative_clicks_alone_select_nothing():
    assert object_prompts([click(10, 20, positive=False), click(5, 5, positive=False)]) == []


def test_a_click_without_is_positive_is_positive():
    item = click(10, 20)
    del item["is_positive"]
    (obj,) = object_prompts([item])
    assert obj.clicks[0].positive


def test_one_box_takes_every_click_and_gives_its_label():
    items = [
        rectangle(10, 10, 50, 40, label="Person"),
        click(20, 20, label="Car"),
        click(90, 90, positive=False),
    ]
    (obj,) = object_prompts(items)
    assert obj.label == "Person" and obj.box == (10, 10, 50, 40)
    assert [(c.x, c.y) for c in obj.clicks] == [(20, 20), (90, 90)]
    assert obj.box_px(200, 100) == [20.0, 10.0, 120.0, 50.0]


def test_several_boxes_are_several_objects_with_the_clicks_inside_them():
    items = [
        rectangle(0, 0, 40, 40, label="Car"),
        rectangle(50, 50, 40, 40, label="Person"),
        click(10, 10, positive=False),
        click(60, 70),
        click(45, 5, label="Car"),  # in neither box: an object of its own
    ]
    first, second, third = object_prompts(items)
    assert (first.label, first.box, [(c.x, c.y) for c in first.clicks]) == (
        "Car",
        (0, 0, 40, 40),
        [(10, 10)],
    )
    assert (second.label, [(c.x, c.y) for c in second.clicks]) == ("Person", [(60, 70)])
    assert (third.label, third.box, [(c.x, c.y) for c in third.clicks]) == ("Car", None, [(45, 5)])


def test_a_rotated_box_is_replaced_by_its_hull():
    # 90° clockwise around the top-left corner, in pixels of a 200 x 100 image: a 40 x 20 px
    # box at (100, 20) covers x 80..100, y 20..60.
    (obj,) = object_prompts([rectangle(50, 20, 20, 20, rotation=90, size=(200, 100))])
    assert obj.box == pytest.approx((40, 20, 10, 40))
    assert obj.box_px(200, 100) == pytest.approx([80, 20, 100, 60])


def test_boxes_are_clipped_to_the_image():
    (obj,) = object_prompts([rectangle(-10, 90, 30, 30)])
    assert obj.box_px(100, 50) == [0.0, 45.0, 20.0, 50.0]


def test_regions_per_image_and_unusable_items_are_told_apart():
    other = click(5, 5, label="Person")
    other["to_name"] = "second"
    items = [
        click(10, 10),
        other,
        {"type": "labels", "to_name": "image", "value": {"start": 0, "end": 3}},  # not a prompt
        {"type": "keypointlabels", "to_name": "image", "value": {"x": "1", "y": 2}},
        {"type": "rectanglelabels", "to_name": "image", "value": {"x": 1, "y": 2, "width": 0}},
        {"type": "keypointlabels", "value": {"x": 1, "y": 2}},  # no image
        rectangle(10, 10, 0, 5),  # no area
    ]
    found = object_prompts(items)
    assert [(o.image, o.label, len(o.clicks)) for o in found] == [
        ("image", "Car", 1),
        ("second", "Person", 1),
    ]


def test_an_unlabelled_prompt_has_no_label():
    item = click(10, 10)
    del item["value"]["keypointlabels"]
    (obj,) = object_prompts([item])
    assert obj.label is None
