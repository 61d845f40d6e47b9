"""The annotator-bias gap: its interval checked by hand and against published values, its
coverage by simulation, and its recovery through the server from a simulated anchored annotator.
"""

from __future__ import annotations

import random

import pytest

from prelabel._engine.acceptance import AcceptanceStats
from prelabel.metrics.bias import agreement_gap, gaps_by_version, wilson_interval
from prelabel.testing.simulation import SimulatedAnnotator, chosen


def test_wilson_interval_by_hand():
    # 8 of 10 at 95 %: z² = 3.8415; centre = (0.8 + 0.19207) / 1.38415 = 0.71674;
    # half = 1.96 / 1.38415 x √(0.016 + 0.0096037) = 1.41602 x 0.16001 = 0.22658.
    low, high = wilson_interval(0.8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    # 0 of 10: the lower bound is 0, the upper z²/(n + z²) = 3.8415 / 13.8415 = 0.27753.
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)


@pytest.mark.parametrize(
    ("pre", "control", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
        ((0, 10), (0, 20), -0.1611, 0.2775),
        ((10, 10), (0, 20), 0.6791, 1.0000),
    ],
)
def test_gap_interval_matches_newcombes_examples(pre, control, low, high):
    gap = agreement_gap((pre[0] / pre[1], pre[1]), (control[0] / control[1], control[1]))
    assert gap.gap == pytest.approx(pre[0] / pre[1] - control[0] / control[1])
    assert (gap.low, gap.high) == pytest.approx((low, high), abs=1e-4)
    assert (gap.preannotated, gap.control) == (pre[1], control[1])


def test_gap_is_undefined_without_a_control_group():
    gap = agreement_gap((0.9, 40), (0.0, 0))
    assert (gap.gap, gap.low, gap.high) == (None, None, None)
    assert (gap.preannotated, gap.control) == (40, 0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        wilson_interval(0.5, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        wilson_interval(1.5, 10)
    with pytest.raises(ValueError, match="confidence"):
        agreement_gap((0.5, 10), (0.5, 10), confidence=1.0)


def test_interval_covers_the_true_gap_about_95_percent_of_the_time():
    rng = random.Random(7)
    p_pre, p_control, n_pre, n_control = 0.86, 0.7, 180, 20  # a 10 % control group
    covered, runs = 0, 2000
    for _ in range(runs):
        pre = sum(rng.random() < p_pre for _ in range(n_pre)) / n_pre
        control = sum(rng.random() < p_control for _ in range(n_control)) / n_control
        gap = agreement_gap((pre, n_pre), (control, n_control))
        assert gap.low is not None and gap.high is not None
        covered += gap.low <= p_pre - p_control <= gap.high
    assert 0.93 <= covered / runs <= 0.98


def test_gaps_pair_the_groups_of_each_version():
    stats = [
        AcceptanceStats("1.5", "m-1", "control", 10, 0.6, 0.6, None),
        AcceptanceStats("1.5", "m-1", "preannotated", 30, 0.9, 0.9, None),
        AcceptanceStats("1.5", "m-2", "preannotated", 4, 1.0, 1.0, None),
    ]
    gaps = gaps_by_version(stats)
    assert gaps[("1.5", "m-1")] == agreement_gap((0.9, 30), (0.6, 10))
    assert gaps[("1.5", "m-1")].gap == pytest.approx(0.3)
    assert gaps[("1.5", "m-2")].gap is None
    assert (gaps[("1.5", "m-2")].preannotated, gaps[("1.5", "m-2")].control) == (4, 0)


def _anchored_project(make_app, ls_request, text_predict, annotation_webhook, accept, seed):
    """600 tasks through /predict (half in the control group) and annotated by a simulated
    annotator who accepts shown suggestions with probability ``accept``.

    The reference backend predicts the label named in the text; 30 % of the texts name the
    wrong one, so the model is right on about 70 %. Returns the /acceptance body and the
    model's accuracy over the tasks.
    """
    rng = random.Random(seed)
    client = make_app(control_fraction=0.5).test_client()
    setup = ls_request("setup")
    assert client.post("/setup", json=setup).status_code == 200
    annotator = SimulatedAnnotator(accept, random.Random(seed + 1))
    tasks, truths = [], {}
    for task_id in range(1, 601):
        truth = rng.choice(["Positive", "Negative"])
        other = "Negative" if truth == "Positive" else "Positive"
        said = truth if rng.random() < 0.7 else other
        tasks.append((task_id, f"clearly {said.lower()} review"))
        truths[task_id] = (truth, said)
    results = client.post("/predict", json=text_predict(tasks)).get_json()["results"]
    for (task_id, text), entry in zip(tasks, results, strict=True):
        truth, _ = truths[task_id]
        label = annotator.label(truth, entry["result"])
        event = annotation_webhook(task_id=task_id, annotation_id=task_id, text=text, label=label)
        assert client.post("/webhook", json=event).status_code == 200
    shown = sum(1 for e in results if chosen(e["result"]) is not None)
    body = client.get(f"/acceptance?project={setup['project']}").get_json()
    model_accuracy = sum(t == s for t, s in truths.values()) / len(truths)
    return body, model_accuracy, shown


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_acceptance_recovers_an_injected_acceptance_bias(
    make_app, ls_request, text_predict, annotation_webhook, seed
):
    accept = 0.5
    body, model_accuracy, shown = _anchored_project(
        make_app, ls_request, text_predict, annotation_webhook, accept, seed
    )
    (bias,) = body["bias"]
    # Accepting a shown suggestion with probability p raises agreement only where the model is
    # wrong: the expected gap is p x (1 - accuracy), about 0.5 x 0.3 = 0.15.
    expected = accept * (1 - model_accuracy)
    low, high = bias["interval"]
    assert low <= expected <= high
    assert low > 0.0  # 600 annotations are enough to see a bias this large
    assert bias["annotations"] == {"preannotated": shown, "control": 600 - shown}
    assert 200 < shown < 400
    assert bias["confidence"] == 0.95 and bias["method"] == "newcombe-wilson"
    groups = {s["group"]: s for s in body["acceptance"]}
    assert bias["gap"] == pytest.approx(
        groups["preannotated"]["mean_agreement"] - groups["control"]["mean_agreement"]
    )


def test_acceptance_shows_no_bias_for_an_unanchored_annotator(
    make_app, ls_request, text_predict, annotation_webhook
):
    body, _, _ = _anchored_project(
        make_app, ls_request, text_predict, annotation_webhook, accept=0.0, seed=4
    )
    (bias,) = body["bias"]
    low, high = bias["interval"]
    assert low <= 0.0 <= high
    assert high - low < 0.2
