"""Score policies and the control group (expected values computed by hand)."""

import math

import pytest

from prelabel.metrics.scoring import in_control_group, score_from_probabilities


def test_policies_on_a_three_class_distribution():
    probs = [0.2, 0.5, 0.3]
    assert score_from_probabilities(probs, "least_confidence") == pytest.approx(0.5)
    assert score_from_probabilities(probs, "margin") == pytest.approx(0.2)
    entropy = -(0.2 * math.log(0.2) + 0.5 * math.log(0.5) + 0.3 * math.log(0.3))
    assert score_from_probabilities(probs, "entropy") == pytest.approx(1 - entropy / math.log(3))


def test_uniform_is_least_confident_and_certain_is_most():
    assert score_from_probabilities([0.25] * 4, "entropy") == pytest.approx(0.0)
    assert score_from_probabilities([0.5, 0.5], "margin") == pytest.approx(0.0)
    assert score_from_probabilities([1.0, 0.0], "entropy") == pytest.approx(1.0)


def test_unnormalised_input_is_normalised_and_invalid_rejected():
    assert score_from_probabilities([2, 6], "least_confidence") == pytest.approx(0.75)
    with pytest.raises(ValueError):
        score_from_probabilities([0, 0], "margin")
    with pytest.raises(ValueError):
        score_from_probabilities([], "margin")


def test_control_group_is_deterministic_and_sized_by_fraction():
    chosen = [in_control_group("2.17", i, 0.2) for i in range(5000)]
    assert chosen == [in_control_group("2.17", i, 0.2) for i in range(5000)]
    assert 0.18 < sum(chosen) / len(chosen) < 0.22
    assert not any(in_control_group("2.17", i, 0.0) for i in range(100))
    assert all(in_control_group("2.17", i, 1.0) for i in range(100))
    assert chosen != [in_control_group("3.17", i, 0.2) for i in range(5000)]
