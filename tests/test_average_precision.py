"""COCO-style mAP of scored regions; expected values are worked out by hand in each test."""

from __future__ import annotations

from typing import Any

import pytest

from prelabel.metrics.average_precision import COCO_IOU_THRESHOLDS, mean_average_precision


def box(
    x: float, y: float, w: float, h: float, label: str = "Car", score: float | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label]},
    }
    if score is not None:
        item["score"] = score
    return item


def test_coco_thresholds_are_point_five_to_point_nine_five() -> None:
    assert COCO_IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_exact_predictions_score_one() -> None:
    truth = [box(10, 10, 20, 20), box(50, 50, 10, 30, "Person")]
    assert mean_average_precision([(truth, truth)]) == pytest.approx(1.0)


def test_a_false_positive_ranked_first_halves_precision() -> None:
    """Ranking [FP, TP] for one object: precision envelope 0.5 at every recall → AP 0.5."""
    pred = [box(60, 60, 10, 10, score=0.9), box(0, 0, 10, 10, score=0.4)]
    assert mean_average_precision([(pred, [box(0, 0, 10, 10)])]) == pytest.approx(0.5)


def test_ranking_a_true_positive_first_is_not_penalised() -> None:
    """Ranking [TP, FP]: precision 1 up to recall 1 → AP 1."""
    pred = [box(60, 60, 10, 10, score=0.4), box(0, 0, 10, 10, score=0.9)]
    assert mean_average_precision([(pred, [box(0, 0, 10, 10)])]) == pytest.approx(1.0)


def test_a_missed_object_caps_recall() -> None:
    """One of two objects found: precision 1 for recall ≤ 0.5, i.e. 51 of 101 recall points."""
    truth = [box(0, 0, 10, 10), box(50, 50, 10, 10)]
    assert mean_average_precision([([box(0, 0, 10, 10, score=0.8)], truth)]) == pytest.approx(
        51 / 101
    )


def test_iou_decides_at_which_thresholds_a_box_matches() -> None:
    """IoU 0.62 matches at 0.50, 0.55 and 0.60 only: mAP50-95 = 3/10, mAP50 = 1."""
    pair = ([box(0, 0, 10, 6.2, score=0.9)], [box(0, 0, 10, 10)])
    assert mean_average_precision([pair]) == pytest.approx(0.3)
    assert mean_average_precision([pair], iou_thresholds=(0.5,)) == pytest.approx(1.0)


def test_labels_must_agree_and_each_label_counts_equally() -> None:
    truth = [box(0, 0, 10, 10, "Car"), box(50, 50, 10, 10, "Person")]
    pred = [box(0, 0, 10, 10, "Car", 0.9), box(50, 50, 10, 10, "Car", 0.8)]
    # Car: [TP, FP] for one object → AP 1; Person: never predicted → AP 0; mean 0.5.
    assert mean_average_precision([(pred, truth)]) == pytest.approx(0.5)


def test_one_prediction_matches_one_object_and_tasks_are_kept_apart() -> None:
    same, other = box(0, 0, 10, 10), box(40, 40, 10, 10)
    # The duplicate cannot take the already matched object: ranking [TP, FP, TP] gives
    # precision 1, 0.5, 0.667 at recall 0.5, 0.5, 1 → (51 * 1 + 50 * 2/3) / 101.
    pred = [
        box(0, 0, 10, 10, score=0.9),
        box(0, 0, 10, 10, score=0.8),
        box(40, 40, 10, 10, score=0.7),
    ]
    assert mean_average_precision([(pred, [same, other])]) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # A box in task 1 does not match the same box annotated in task 0.
    assert mean_average_precision([([], [same]), ([same], [])]) == pytest.approx(0.0)


def test_ranking_spans_tasks() -> None:
    """Scores rank across tasks: [TP (0.9, task 0), FP (0.8, task 1), TP (0.7, task 1)].

    Precision 1, 0.5, 0.667 at recall 0.5, 0.5, 1 → envelope 1 up to recall 0.5 (51 points)
    and 0.667 above it (50 points).
    """
    a, b = box(0, 0, 10, 10), box(40, 40, 10, 10)
    pairs = [
        ([box(0, 0, 10, 10, score=0.9)], [a]),
        ([box(80, 80, 5, 5, score=0.8), box(40, 40, 10, 10, score=0.7)], [b]),
    ]
    assert mean_average_precision(pairs) == pytest.approx((51 * 1.0 + 50 * (2 / 3)) / 101)


def test_polygons_compare_by_bounding_box_and_other_types_are_ignored() -> None:
    polygon = {
        "type": "polygonlabels",
        "value": {"points": [[0, 0], [10, 0], [10, 10], [0, 10]], "polygonlabels": ["Car"]},
    }
    choice = {"type": "choices", "value": {"choices": ["Car"]}}
    assert mean_average_precision([([polygon, choice], [box(0, 0, 10, 10)])]) == pytest.approx(1.0)


def test_without_annotated_regions_the_precision_is_undefined() -> None:
    assert mean_average_precision([([], [])]) is None
    assert mean_average_precision([]) is None
    assert mean_average_precision([([box(0, 0, 5, 5, score=0.9)], [])]) is None
