"""The learning loop as Label Studio shows it: retrain after N annotations, re-predict the
unlabeled tasks with the promoted version, and sort them by its scores out of the box."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: Annotations per training (PRELABEL_TRAIN_EVERY and the first-training minimum).
EVERY = 12


def test_scores_sort_in_label_studio_after_each_promotion(ls, backends, new_project, e2e):
    backends.register(
        "loop",
        e2e.BackendSpec(
            env={
                "PRELABEL_TRAIN_EVERY": str(EVERY),
                "PRELABEL_TRAIN_MIN_ANNOTATIONS": str(EVERY),
                "PRELABEL_REPREDICT": "true",
            }
        ),
    )
    backend = backends.get("loop")
    project = new_project(backend=backend)
    examples = e2e.corpus(EVERY, 11)
    # Unlabeled tasks of mixed certainty: two words of one sentiment, or one of each.
    unlabeled = [e.text for e in e2e.corpus(16, 12)]
    unlabeled += ["love hate the movie", "great awful delivery", "wonderful terrible book"]
    ids = ls.import_texts(project, [e.text for e in examples] + unlabeled)

    for task_id, example in zip(ids[: EVERY - 1], examples, strict=False):
        ls.annotate(task_id, e2e.choice(example.label))
    assert backend.jobs(project) == []  # fewer than PRELABEL_TRAIN_MIN_ANNOTATIONS: no training
    ls.annotate(ids[EVERY - 1], e2e.choice(examples[EVERY - 1].label))

    jobs = {j["kind"]: j for j in backend.wait_jobs(project)}
    while "predict" not in jobs:  # queued by the promotion, after the training finished
        jobs = {j["kind"]: j for j in backend.wait_jobs(project)}
    train, predict = jobs["train"], jobs["predict"]
    assert train["status"] == "succeeded" and train["result"]["promoted"], train
    version = train["result"]["version"]
    assert predict["status"] == "succeeded", predict
    assert predict["reason"] == "PROMOTED" and predict["result"]["selected"] is True, predict
    assert predict["result"]["done"] == len(unlabeled), predict

    # The project's prediction selector is on the promoted version ...
    assert ls.json("GET", f"/api/projects/{project.id}")["model_version"] == version
    # ... so LS's own sort by prediction score follows the backend's scores.
    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    listed = ls.json(
        "GET",
        "/api/tasks",
        params={"project": project.id, "fields": "all", "page_size": 100, "query": query},
    )["tasks"]
    scores = {}
    for task in listed:
        if task["id"] in ids[EVERY:]:
            (mine,) = [p for p in task["predictions"] if p["model_version"] == version]
            scores[task["id"]] = mine["score"]
    in_ls_order = [scores[t["id"]] for t in listed if t["id"] in scores]
    assert len(in_ls_order) == len(unlabeled)
    assert in_ls_order == sorted(in_ls_order), in_ls_order
    assert in_ls_order[0] < in_ls_order[-1]  # the mixed reviews really are less certain
