"""Scenario 4: annotation events reach the backend, and LS never waits for training."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def events(backend, action):
    return backend.metric("prelabel_webhook_events_total", action=action)


def annotated_tasks(job):
    """How many annotated tasks a training job had (for training plus held out)."""
    metrics = job["result"]["metrics"]
    return metrics["train_tasks"] + metrics["holdout_tasks"]


def test_annotation_created_updated_deleted_reach_the_backend(
    ls, backend, new_project, paused_worker, e2e
):
    project = new_project(backend=backend)
    examples = e2e.corpus(6, 4)
    ids = ls.import_texts(project, [e.text for e in examples])
    before = {
        a: events(backend, a)
        for a in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
    }

    # With the training worker stopped, nothing can train: LS's save must still return at
    # once (its webhook is sent inside the request, 1 s timeout) and leave a queued job.
    fast = backend.metric("prelabel_request_seconds_bucket", endpoint="/webhook", le="0.25")
    with paused_worker():
        started = time.monotonic()
        first = ls.annotate(ids[0], e2e.choice(examples[0].label))
        elapsed = time.monotonic() - started
        jobs = backend.jobs(project)
        assert [(j["status"], j["reason"]) for j in jobs] == [("queued", "ANNOTATION_CREATED")], (
            jobs
        )
        # The backend answered LS's webhook within 0.25 s, though nothing could train.
        assert (
            backend.metric("prelabel_request_seconds_bucket", endpoint="/webhook", le="0.25")
            == fast + 1
        )
    assert elapsed < 5.0, f"annotation save took {elapsed:.2f} s"
    assert events(backend, "ANNOTATION_CREATED") == before["ANNOTATION_CREATED"] + 1

    annotations = [first] + [
        ls.annotate(i, e2e.choice(e.label)) for i, e in zip(ids[1:], examples[1:], strict=True)
    ]
    jobs = backend.wait_jobs(project)
    assert events(backend, "ANNOTATION_CREATED") == before["ANNOTATION_CREATED"] + 6
    assert jobs[0]["status"] == "succeeded", jobs[0]
    assert jobs[0]["result"]["trained"] and annotated_tasks(jobs[0]) == 6, jobs[0]
    trained = jobs[0]["result"]["version"]

    # An update (another label) and a delete each reach the backend and retrain it.
    ls.call(
        "PATCH",
        f"/api/annotations/{annotations[0]['id']}",
        json={"result": e2e.choice("Negative" if examples[0].label == "Positive" else "Positive")},
    )
    ls.call("DELETE", f"/api/annotations/{annotations[1]['id']}")
    assert events(backend, "ANNOTATION_UPDATED") == before["ANNOTATION_UPDATED"] + 1
    assert events(backend, "ANNOTATIONS_DELETED") == before["ANNOTATIONS_DELETED"] + 1
    jobs = backend.wait_jobs(project)
    newer = [j for j in jobs if j["reason"] != "ANNOTATION_CREATED"]
    assert newer and all(j["status"] == "succeeded" for j in newer), jobs
    reasons = ", ".join(j["reason"] for j in newer)
    assert "ANNOTATION_UPDATED" in reasons and "ANNOTATIONS_DELETED" in reasons, reasons
    # The deleted annotation is gone from the training set: 5 tasks left.
    assert annotated_tasks(jobs[0]) == 5, jobs[0]
    assert jobs[0]["result"]["version"] != trained
    names = [v["name"] for v in backend.versions(project)]
    assert trained in names and jobs[0]["result"]["version"] in names
