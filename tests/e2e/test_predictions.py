"""Scenarios 2 and 3: batch pre-annotation ("Retrieve Predictions") and predictions on task open."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def assert_valid_sentiment_prediction(prediction, version):
    """One prediction as LS stored it, checked against SENTIMENT_CONFIG."""
    assert prediction["model_version"] == version, prediction
    assert prediction["score"] is not None and 0.0 <= prediction["score"] <= 1.0, prediction
    (region,) = prediction["result"]
    assert region["from_name"] == "sentiment" and region["to_name"] == "text", region
    assert region["type"] == "choices", region
    assert region["value"]["choices"] in (["Positive"], ["Negative"]), region


def test_retrieve_predictions_creates_one_prediction_per_task_and_no_duplicates(
    ls, backend, new_project, train_on, e2e
):
    project = new_project(backend=backend)
    train_on(project, e2e.corpus(24, 1))
    version = ls.ml(project.ml_id)["model_version"]  # what /setup says now
    current = [v for v in backend.versions(project) if v["status"] == "current"]
    assert [v["name"] for v in current] == [version]
    examples = e2e.corpus(24, 2)
    ids = ls.import_texts(project, [e.text for e in examples])
    predict_calls = backend.metric("prelabel_requests_total", endpoint="/predict", status="200")

    ls.retrieve_predictions(project)

    # One /predict for the whole selection, one stored prediction per task (the 24 annotated too).
    assert (
        backend.metric("prelabel_requests_total", endpoint="/predict", status="200")
        == predict_calls + 1
    )
    stored = {task_id: ls.only_prediction(task_id) for task_id in ls.task_ids(project)}
    assert len(stored) == 48
    for prediction in stored.values():
        assert_valid_sentiment_prediction(prediction, version)
    right = sum(
        e2e.chosen(stored[i]["result"]) == e.label for i, e in zip(ids, examples, strict=True)
    )
    assert right >= 20, f"{right}/24 correct"

    ls.retrieve_predictions(project)

    # Same version as /setup reports: LS skips every task (protocol §6.6), nothing is added.
    again = {task_id: ls.predictions(task_id) for task_id in stored}
    assert {i: [p["id"] for p in found] for i, found in again.items()} == {
        i: [p["id"]] for i, p in stored.items()
    }


def test_opening_a_task_without_predictions_asks_the_backend(
    ls, backend, new_project, train_on, e2e
):
    project = new_project(backend=backend)
    train_on(project, e2e.corpus(24, 3))
    version = ls.ml(project.ml_id)["model_version"]
    (task_id,) = ls.import_texts(project, ["love this wonderful phone"])
    assert ls.predictions(task_id) == []

    opened = ls.json("GET", f"/api/tasks/{task_id}")  # what the labeling UI does

    prediction = ls.only_prediction(task_id)
    assert_valid_sentiment_prediction(prediction, version)
    assert e2e.chosen(prediction["result"]) == "Positive"
    assert [p["id"] for p in opened["predictions"]] == [prediction["id"]]
    # Opening it again does not predict again: the task has a prediction now.
    ls.json("GET", f"/api/tasks/{task_id}")
    assert [p["id"] for p in ls.predictions(task_id)] == [prediction["id"]]
