"""Scenario 7: a backend behind basic auth, set in LS's ML form, and a bearer token for webhooks."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_basic_auth_backend_works_end_to_end_and_refuses_anonymous_requests(
    ls, auth_backend, new_project, train_on, e2e
):
    backend = auth_backend
    user, password, token = backend.credentials
    project = new_project()
    form = {"url": backend.url, "project": project.id, "title": "textcls"}

    # LS's form without credentials, or with a wrong password: the backend refuses /setup,
    # so LS refuses to add it.
    for extra in (
        {},
        {"auth_method": "BASIC_AUTH", "basic_auth_user": user, "basic_auth_pass": "wrong"},
    ):
        refused = ls.call("POST", "/api/ml", json={**form, **extra}, expect=(400,))
        assert "401" in refused.text, refused.text

    connected = ls.connect(
        project, backend, auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=password
    )
    assert (connected["state"], connected["auth_method"]) == ("CO", "BASIC_AUTH"), connected
    assert connected["model_version"] == backend.get("/health")["version"]

    # Anonymous requests are refused (only /health stays open for probes).
    with httpx.Client(base_url=backend.url, timeout=10, trust_env=False) as anonymous:
        assert anonymous.get("/health").status_code == 200
        body = {"project": project.key, "schema": e2e.SENTIMENT_CONFIG}
        assert anonymous.post("/setup", json=body).status_code == 401
        assert anonymous.get("/jobs").status_code == 401
        assert anonymous.get("/metrics").status_code == 401
        assert (
            anonymous.post(
                "/webhook", json={"action": "START_TRAINING", "project": {"id": project.id}}
            ).status_code
            == 401
        )

    # LS's event webhooks carry no credentials (protocol §2): the backend refuses them...
    examples = e2e.corpus(10, 12)
    refused_before = backend.metric("prelabel_requests_total", endpoint="/webhook", status="401")
    (first,) = ls.import_texts(project, [examples[0].text])
    ls.annotate(first, e2e.choice(examples[0].label))
    assert (
        backend.metric("prelabel_requests_total", endpoint="/webhook", status="401")
        > refused_before
    )
    assert backend.jobs(project) == []
    # ...until the project's webhook sends the bearer token, as the README says.
    (hook,) = ls.webhooks(project)
    ls.call(
        "PATCH",
        f"/api/webhooks/{hook['id']}",
        json={"headers": {"Authorization": f"Bearer {token}"}},
    )

    train_on(project, examples[1:], via="api")  # annotations by webhook, then Start Training

    jobs = backend.jobs(project)
    # (A queued job absorbs later requests: reasons read like "ANNOTATION_CREATED, START_TRAINING".)
    assert "ANNOTATION_CREATED" in jobs[-1]["reason"] and "START_TRAINING" in jobs[0]["reason"], (
        jobs
    )
    # Start Training pulled all 10 annotations from LS, the first one included.
    assert (
        jobs[0]["result"]["metrics"]["train_tasks"] + jobs[0]["result"]["metrics"]["holdout_tasks"]
        == 10
    )
    # LS (through /setup, with basic auth) shows the version the backend serves now.
    (version,) = [v["name"] for v in backend.versions(project) if v["status"] == "current"]
    assert ls.ml(project.ml_id)["model_version"] == version
    new = e2e.corpus(6, 13)
    new_ids = ls.import_texts(project, [e.text for e in new])

    ls.retrieve_predictions(project, new_ids)

    for task_id in new_ids:
        prediction = ls.only_prediction(task_id)
        assert prediction["model_version"] == version and prediction["result"], prediction
