"""Scenario 6: task data behind URLs (LS uploads, local files) fetched with the LS token.

The labeling config has ``<Text valueType="url">``: a task's ``text`` is the URL of a text file,
which textcls fetches through prelabel's media resolver, with LABEL_STUDIO_API_KEY.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def train_by_annotating(ls, project, ids, examples, e2e):
    for task_id, example in zip(ids, examples, strict=True):
        ls.annotate(task_id, e2e.choice(example.label))
    ls.train(project)
    jobs = project.backend.wait_jobs(project)
    # Training read every annotated text through its URL: each one is an example.
    assert jobs[0]["status"] == "succeeded" and jobs[0]["result"]["trained"], jobs[0]
    metrics = jobs[0]["result"]["metrics"]
    assert metrics["train_tasks"] + metrics["holdout_tasks"] == len(examples), metrics
    assert metrics["sentiment.examples"] == metrics["train_tasks"], metrics


def assert_predicted_from_content(ls, ids):
    """Every task got one non-empty prediction: its text was fetched (no text, no region)."""
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        assert prediction["result"], f"task {task_id}: empty prediction {prediction}"


@pytest.mark.parametrize("token", ["legacy token", "personal access token"])
def test_uploaded_text_files_are_fetched_with_the_ls_token(ls, request, new_project, e2e, token):
    backend = request.getfixturevalue("backend" if token == "legacy token" else "trainer")
    project = new_project(e2e.URL_SENTIMENT_CONFIG, backend=backend)
    train = e2e.corpus(12, 7)
    ids = ls.upload_text_files(project, {f"train{i}.txt": e.text for i, e in enumerate(train)})
    train_by_annotating(ls, project, ids, train, e2e)
    new = e2e.corpus(6, 8)

    new_ids = ls.upload_text_files(project, {f"new{i}.txt": e.text for i, e in enumerate(new)})
    ls.retrieve_predictions(project, new_ids)

    assert_predicted_from_content(ls, new_ids)
    assert "Cannot fetch" not in backend.log_text()


def test_local_files_served_by_ls_are_fetched(ls, label_studio, backend, new_project, e2e):
    project = new_project(e2e.URL_SENTIMENT_CONFIG, backend=backend)
    folder = label_studio.files_root / f"project-{project.id}"
    folder.mkdir()
    train, new = e2e.corpus(12, 9), e2e.corpus(6, 10)
    for name, example in [
        *((f"train{i}.txt", e) for i, e in enumerate(train)),
        *((f"new{i}.txt", e) for i, e in enumerate(new)),
    ]:
        (folder / name).write_text(example.text)

    task_ids = ls.add_local_storage(project, folder)

    by_name = {}
    for task in ls.tasks(project):
        url = task["data"]["text"]
        assert url.startswith(f"/data/local-files/?d=project-{project.id}/"), task["data"]
        by_name[url.rpartition("/")[2]] = task["id"]
    assert sorted(by_name.values()) == task_ids
    train_by_annotating(ls, project, [by_name[f"train{i}.txt"] for i in range(12)], train, e2e)
    new_ids = [by_name[f"new{i}.txt"] for i in range(6)]
    ls.retrieve_predictions(project, new_ids)
    assert_predicted_from_content(ls, new_ids)


def test_a_rejected_token_fails_that_tasks_prediction_only_and_says_why(
    ls, bad_token_backend, new_project, e2e
):
    backend = bad_token_backend
    project = new_project(e2e.URL_SENTIMENT_CONFIG, backend=backend)
    # Texts inside data: URIs need no LS, so this backend can still train on them.
    train = e2e.corpus(8, 11)
    ids = ls.import_tasks(project, [{"data": {"text": e2e.data_uri(e.text)}} for e in train])
    for task_id, example in zip(ids, train, strict=True):
        ls.annotate(task_id, e2e.choice(example.label))
    jobs = backend.wait_jobs(project)
    assert jobs[0]["result"].get("trained"), jobs[0]
    (upload_id,) = ls.upload_text_files(project, {"unreachable.txt": "love it, great"})
    # (The task list, not GET /api/tasks/<id>: opening a task would predict it on its own.)
    url = next(t for t in ls.tasks(project) if t["id"] == upload_id)["data"]["text"]
    outcomes = ("predicted", "empty", "failed")
    counts = {o: backend.metric("prelabel_predictions_total", outcome=o) for o in outcomes}

    ls.retrieve_predictions(project)

    # One batch of all 9 tasks went through: 8 predicted; the upload's prediction is empty,
    # and counted as failed: its media could not be fetched.
    after = {o: backend.metric("prelabel_predictions_total", outcome=o) for o in outcomes}
    assert after == {
        "predicted": counts["predicted"] + 8,
        "empty": counts["empty"],
        "failed": counts["failed"] + 1,
    }
    for task_id in ids:
        assert ls.only_prediction(task_id)["result"], task_id
    assert ls.only_prediction(upload_id)["result"] == []
    log = backend.log_text()
    lines = [line for line in log.splitlines() if f"Cannot fetch {url}" in line]
    assert lines, f"no error naming {url} in the backend log:\n{log[-3000:]}"
    assert "401" in lines[0], lines[0]
    # The reason is in /health and /jobs too, where one looks without the server's log.
    error = backend.get("/health")["last_errors"][project.key]
    assert error["source"] == "predict"
    assert error["message"].startswith(
        f"1 of 9 tasks got no prediction; task {upload_id}: Cannot fetch {url}: "
        "Label Studio answered HTTP 401"
    ), error
    assert backend.get("/jobs", params={"project": project.key})["last_errors"] == {
        project.key: error
    }
