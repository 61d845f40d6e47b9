"""Scenario 5: Start Training trains a new version in the background, which then predicts better."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def accuracy(ls, ids, examples, version, e2e):
    """Share of tasks whose prediction of ``version``, as stored in LS, has the hidden label."""
    right = 0
    for task_id, example in zip(ids, examples, strict=True):
        found = [p for p in ls.predictions(task_id) if p["model_version"] == version]
        assert len(found) == 1, f"task {task_id}: {ls.predictions(task_id)}"
        right += e2e.chosen(found[0]["result"]) == example.label
    return right / len(ids)


def test_start_training_trains_a_version_that_predicts_held_out_tasks(
    ls, trainer, new_project, e2e
):
    project = new_project(backend=trainer)
    base = ls.ml(project.ml_id)["model_version"]
    examples = e2e.corpus(60, 5)
    ids = ls.import_texts(project, [e.text for e in examples])

    # Cold start: every task gets a prediction, and every one is empty.
    ls.retrieve_predictions(project)
    before = accuracy(ls, ids[40:], examples[40:], base, e2e)
    assert all(ls.only_prediction(i)["result"] == [] for i in ids)

    for task_id, example in zip(ids[:40], examples[:40], strict=True):
        ls.annotate(task_id, e2e.choice(example.label))
    # This backend trains on Start Training only: the annotations alone queued nothing.
    assert trainer.jobs(project) == []

    ls.train(project)

    (job,) = trainer.wait_jobs(project)
    assert job["reason"] == "START_TRAINING" and job["status"] == "succeeded", job
    result = job["result"]
    assert result["trained"] and result["promoted"], result
    # The annotations came from LS's export (pulled with the personal access token).
    assert result["metrics"]["train_tasks"] + result["metrics"]["holdout_tasks"] == 40, result
    version = result["version"]
    assert version != base
    listed = {v["name"]: v for v in trainer.versions(project)}
    assert listed[version]["status"] == "current", listed
    assert version in ls.json("GET", f"/api/ml/{project.ml_id}/versions")["versions"]
    assert ls.ml(project.ml_id)["model_version"] == version

    held_out = e2e.corpus(80, 6)[60:]
    new_ids = ls.import_texts(project, [e.text for e in held_out])
    ls.retrieve_predictions(project)

    after = accuracy(ls, new_ids, held_out, version, e2e)
    assert before == 0.0
    assert after >= 0.8, f"accuracy {after:.2f} on held-out tasks after training"
    # The unannotated tasks from before were predicted again with the new version.
    assert accuracy(ls, ids[40:], examples[40:], version, e2e) >= 0.8
