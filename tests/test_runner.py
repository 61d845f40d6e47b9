"""The prediction runner's invariants, through ``/predict`` (protocol §3.3, §5, §6.4-§6.5).

One entry per task in order whatever the backend does, per-task isolation of failures, nested
lists for several predictions, an object for interactive calls, the score policy, and the
control group. Backends here are small subclasses of the reference backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from prelabel import results as R
from prelabel.backend import Context, TaskPredictions
from prelabel.results import Prediction
from prelabel.testing.reference import BrokenCountBackend, ReferenceBackend


def served(client, ls_request, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """(/setup's model_version, /predict's results) for a predict body."""
    setup = client.post("/setup", json=ls_request("setup"))
    assert setup.status_code == 200, setup.get_data(as_text=True)
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return setup.get_json()["model_version"], response.get_json()["results"]


def sentiment(ctx: Context):
    (control,) = ctx.label_config.controls_of("Choices")
    return control


# -- isolation and the 1:1 rule -----------------------------------------------------------


class FailsOnTask2(ReferenceBackend):
    """Raises whenever task 2 is in the call."""

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        if any(t.get("id") == 2 for t in tasks):
            raise RuntimeError("cannot read task 2")
        return super().predict(tasks, ctx)


def test_a_failing_task_gets_an_empty_prediction_the_others_keep_theirs(
    make_app, ls_request, text_predict, choice_of
):
    client = make_app(FailsOnTask2()).test_client()
    body = text_predict([(1, "so positive"), (2, "negative too"), (3, "negative")])
    version, results = served(client, ls_request, body)
    assert len(results) == 3
    assert results[1] == {"result": [], "model_version": version, "score": None}
    assert choice_of(results[0]) == ["Positive"]
    assert choice_of(results[2]) == ["Negative"]
    # No probabilities: the task score is the mean region score (the reference gives 0.6).
    assert results[0]["score"] == pytest.approx(0.6)
    assert results[0]["model_version"] == results[2]["model_version"] == version

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'prelabel_predictions_total{backend="reference",outcome="failed"} 1.0' in metrics


class AlwaysFails(ReferenceBackend):
    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        raise ValueError("model exploded")


def test_a_backend_raising_on_every_task_fails_the_request_with_its_message(make_app, ls_request):
    client = make_app(AlwaysFails()).test_client()
    assert client.post("/setup", json=ls_request("setup")).status_code == 200
    response = client.post("/predict", json=ls_request("predict_batch_text"))
    # Not 200 with empty predictions: LS shows the status line's reason to its user.
    message = "Prediction failed on all 3 tasks: ValueError: model exploded"
    assert (response.status, response.get_json()["message"]) == (f"500 {message}", message)


def test_a_backend_dropping_tasks_still_gets_one_entry_per_task(make_app, ls_request, text_predict):
    # BrokenCountBackend drops the last task of every call, even a call of one task.
    client = make_app(BrokenCountBackend()).test_client()
    body = text_predict([(1, "so positive"), (2, "meh"), (3, "negative")])
    version, results = served(client, ls_request, body)
    assert results == [{"result": [], "score": None, "model_version": version}] * 3


class MiscountsBatches(ReferenceBackend):
    """Returns one prediction too many for a batch, but is right for a single task."""

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        out = list(super().predict(tasks, ctx))
        return [*out, Prediction.empty()] if len(tasks) > 1 else out


def test_a_wrong_count_for_a_batch_is_recovered_task_by_task(
    make_app, ls_request, text_predict, choice_of
):
    client = make_app(MiscountsBatches()).test_client()
    body = text_predict([(1, "so positive"), (2, "meh"), (3, "negative")])
    version, results = served(client, ls_request, body)
    assert len(results) == 3
    assert [choice_of(e) for e in results] == [["Positive"], None, ["Negative"]]
    assert {e["model_version"] for e in results} == {version}


# -- several predictions per task (E6) and interactive calls (§5) -------------------------


class TwoOpinions(ReferenceBackend):
    """Two predictions per task: Positive (0.9) then Negative (0.1)."""

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        control = sentiment(ctx)
        return [
            [
                Prediction(result=[R.choices(control, ["Positive"])], score=0.9),
                Prediction(result=[R.choices(control, ["Negative"])], score=0.1),
            ]
            for _ in tasks
        ]


class InteractiveTwoOpinions(TwoOpinions):
    """Interactive: suggests only when the annotator clicked something."""

    interactive: ClassVar[bool] = True

    def predict(self, tasks, ctx):
        if not ctx.interaction:
            return [Prediction.empty() for _ in tasks]
        return super().predict(tasks, ctx)


def test_two_predictions_for_a_task_are_a_nested_list(
    make_app, ls_request, text_predict, choice_of
):
    client = make_app(TwoOpinions()).test_client()
    version, results = served(client, ls_request, text_predict([(1, "a"), (2, "b")]))
    assert len(results) == 2
    for entry in results:
        assert isinstance(entry, list) and len(entry) == 2
        assert [choice_of(p) for p in entry] == [["Positive"], ["Negative"]]
        assert [p["score"] for p in entry] == [0.9, 0.1]
        assert [p["model_version"] for p in entry] == [version, version]


def test_interactive_call_answers_an_object_first(make_app, ls_request, choice_of):
    client = make_app(InteractiveTwoOpinions()).test_client()
    body = ls_request("predict_interactive_text")
    assert body["params"]["context"]["result"]
    version, results = served(client, ls_request, body)
    assert len(results) == 1
    assert isinstance(results[0], dict)
    assert choice_of(results[0]) == ["Positive"]
    assert results[0]["model_version"] == version


def test_interactive_backend_with_empty_context_predicts_nothing(make_app, ls_request):
    client = make_app(InteractiveTwoOpinions()).test_client()
    body = ls_request("predict_interactive_text")
    body["params"]["context"] = {"result": []}
    version, results = served(client, ls_request, body)
    # §5: an empty `results` list makes LS show "Incorrect response from ML service";
    # one empty prediction object is the quiet answer.
    assert results == [{"result": [], "score": None, "model_version": version}]


# -- score policy (§6.4: score = confidence) ----------------------------------------------


class SeventyThirty(ReferenceBackend):
    """Positive with class probabilities [0.7, 0.3] and no explicit score."""

    explicit: ClassVar[float | None] = None

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        control = sentiment(ctx)
        return [
            Prediction(
                result=[R.choices(control, ["Positive"])],
                probabilities=[0.7, 0.3],
                score=self.explicit,
            )
            for _ in tasks
        ]


class ExplicitScore(SeventyThirty):
    explicit: ClassVar[float | None] = 0.25


# entropy: H = -(0.7 ln 0.7 + 0.3 ln 0.3) = 0.2496725 + 0.3611918 = 0.6108643 nats;
# H / ln 2 = 0.8812909; score = 1 - 0.8812909 = 0.1187091.
@pytest.mark.parametrize(
    ("policy", "expected"),
    [("least_confidence", 0.7), ("margin", 0.4), ("entropy", 0.1187091)],
)
def test_score_from_probabilities_follows_the_policy(
    make_app, ls_request, text_predict, choice_of, policy, expected
):
    client = make_app(SeventyThirty(), score_policy=policy).test_client()
    _, results = served(client, ls_request, text_predict([(1, "x"), (2, "y")]))
    assert [e["score"] for e in results] == [pytest.approx(expected, abs=1e-6)] * 2
    assert [choice_of(e) for e in results] == [["Positive"], ["Positive"]]


def test_entropy_hand_value():
    # Guard the hand computation above with the textbook formula.
    h = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert 1 - h / math.log(2) == pytest.approx(0.1187091, abs=1e-6)


@pytest.mark.parametrize("policy", ["least_confidence", "margin", "entropy"])
def test_an_explicit_score_wins_over_probabilities(make_app, ls_request, text_predict, policy):
    client = make_app(ExplicitScore(), score_policy=policy).test_client()
    _, results = served(client, ls_request, text_predict([(1, "x")]))
    assert results[0]["score"] == 0.25


# -- control group ------------------------------------------------------------------------


def test_control_fraction_one_hides_every_prediction(make_app, ls_request, text_predict):
    client = make_app(control_fraction=1.0).test_client()
    body = text_predict([(1, "so positive"), (2, "negative"), (3, "meh")])
    version, results = served(client, ls_request, body)
    assert results == [{"result": [], "score": None, "model_version": version}] * 3
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'prelabel_predictions_total{backend="reference",outcome="control"} 3.0' in metrics


def test_control_fraction_zero_shows_predictions(make_app, ls_request, text_predict, choice_of):
    client = make_app(control_fraction=0.0).test_client()
    _, results = served(client, ls_request, text_predict([(1, "so positive"), (2, "negative")]))
    assert [choice_of(e) for e in results] == [["Positive"], ["Negative"]]


def test_control_group_is_stable_per_task(make_app, ls_request, text_predict):
    # Half the tasks in the control group: which ones must not change between calls.
    client = make_app(control_fraction=0.5).test_client()
    tasks = [(i, "so positive") for i in range(1, 41)]
    _, first = served(client, ls_request, text_predict(tasks))
    _, again = served(client, ls_request, text_predict(list(reversed(tasks))))
    hidden = [e["result"] == [] for e in first]
    assert hidden == [e["result"] == [] for e in reversed(again)]
    assert 0 < sum(hidden) < len(tasks)  # 40 tasks at 1/2: both groups are non-empty


def test_small_projects_are_not_split_for_a_holdout():
    from prelabel._engine.training import split_holdout

    tasks = [{"id": i} for i in range(24)]
    # 24 tasks x 0.2 = 4.8 expected held out < 5: everything trains, whatever the hashes say.
    assert split_holdout(tasks, 0.2, 5) == (tasks, [])
    many = [{"id": i} for i in range(400)]
    train, holdout = split_holdout(many, 0.2, 5)
    assert sorted(t["id"] for t in train + holdout) == list(range(400))
    assert 50 <= len(holdout) <= 110
    assert split_holdout(many, 0.2, 5) == (train, holdout)  # deterministic
