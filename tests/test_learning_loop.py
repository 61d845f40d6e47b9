"""The loop around training: retrain every N changes, re-predict after a promotion, and keep
Label Studio's prediction selector on the served version so scores sort."""

from __future__ import annotations

import logging

import pytest
from fake_ls_project import TOKEN, FakeProjectLS

from prelabel._engine.selector import SelectorSync
from prelabel._engine.store import ProjectState
from prelabel._ls.client import LabelStudioClient
from prelabel.project import ProjectKey
from prelabel.testing.reference import REFERENCE_CONFIG

#: The project of the recorded webhooks (id 1, created 2026-11-27T19:12:44.385994Z).
KEY = ProjectKey("1", 1795806764)


def _events(client, annotation_webhook, start, n, label="Positive"):
    """Post ``n`` annotation events; the job ids the server answered with (None: no job)."""
    return [
        client.post(
            "/webhook",
            json=annotation_webhook(
                task_id=i, annotation_id=i, text=f"{label.lower()} text {i}", label=label
            ),
        )
        .get_json()
        .get("job")
        for i in range(start, start + n)
    ]


def test_training_waits_for_the_minimum_then_for_every_nth_change(make_app, annotation_webhook):
    app = make_app(train_every=5, train_min_annotations=3)
    client = app.test_client()
    runtime = app.extensions["prelabel"]
    first = _events(client, annotation_webhook, 1, 3)
    assert first[:2] == [None, None] and first[2] is not None  # the 3rd annotation trains
    runtime.run_job(runtime.queue.claim("test"))  # the first version: counting starts over
    assert runtime.store.versions(KEY)
    later = _events(client, annotation_webhook, 10, 5)
    assert later[:4] == [None] * 4 and later[4] is not None  # every 5th change after that
    assert (
        client.post(
            "/webhook",
            json=annotation_webhook(task_id=99, annotation_id=99, text="x", label="Positive"),
        ).get_json()["job"]
        == later[4]
    )  # queued and not started yet: coalesced into it


def test_start_training_always_trains(make_app, ls_request):
    client = make_app(train_every=50, train_min_annotations=50).test_client()
    answer = client.post("/webhook", json=ls_request("webhook_START_TRAINING"))
    assert answer.status_code == 201 and answer.get_json()["job"]


def test_a_promotion_queues_a_re_prediction_when_label_studio_is_reachable(
    make_app, annotation_webhook, loopback
):
    url = loopback(FakeProjectLS([]))
    app = make_app(train_every=1, train_min_annotations=1, label_studio_url=url,
                   label_studio_api_key=TOKEN)  # fmt: skip
    client = app.test_client()
    runtime = app.extensions["prelabel"]
    _events(client, annotation_webhook, 1, 2)
    result = runtime.run_job(runtime.queue.claim("test"))
    assert result["promoted"] is True
    (queued,) = [j for j in runtime.queue.list(KEY) if j.status == "queued"]
    assert (queued.kind, queued.reason, dict(queued.payload)) == (
        "predict", "PROMOTED", {"select": True}
    )  # fmt: skip


def test_without_label_studio_a_promotion_queues_no_re_prediction(make_app, annotation_webhook):
    app = make_app(train_every=1, train_min_annotations=1)
    runtime = app.extensions["prelabel"]
    _events(app.test_client(), annotation_webhook, 1, 2)
    assert runtime.run_job(runtime.queue.claim("test"))["promoted"] is True
    assert [j.kind for j in runtime.queue.list(KEY) if j.status == "queued"] == []


def test_a_predict_job_posts_predictions_and_selects_the_version(make_app, ls_request, loopback):
    tasks = [{"id": i, "data": {"text": "negative words"}, "total_annotations": 0}
             for i in range(1, 6)]  # fmt: skip
    ls = FakeProjectLS(tasks, label_config=REFERENCE_CONFIG)
    app = make_app(label_studio_url=loopback(ls), label_studio_api_key=TOKEN)
    client = app.test_client()
    runtime = app.extensions["prelabel"]
    setup = ls_request("setup")
    setup.update(project="7.1795806764", schema=REFERENCE_CONFIG)
    version = client.post("/setup", json=setup).get_json()["model_version"]
    answer = client.post("/projects/7/predict", json={"select": True})
    assert answer.status_code == 202
    job = runtime.queue.claim("test")
    assert job.id == answer.get_json()["job"]["id"] and job.kind == "predict"
    result = runtime.run_job(job)
    assert (result["done"], result["stored"], result["selected"]) == (5, 5, True)
    assert ls.project["model_version"] == version
    assert {p["task"] for p in ls.predictions()} == {1, 2, 3, 4, 5}
    assert all(p["result"][0]["value"]["choices"] == ["Negative"] for p in ls.predictions())


def test_a_predict_job_with_nothing_to_predict_leaves_the_selector_alone(
    make_app, ls_request, loopback
):
    # Every task labelled (as right after the first training on imported annotations): LS
    # would refuse a selector naming a version that no prediction carries.
    tasks = [{"id": 1, "data": {"text": "x"}, "total_annotations": 1}]
    ls = FakeProjectLS(tasks, label_config=REFERENCE_CONFIG)
    app = make_app(label_studio_url=loopback(ls), label_studio_api_key=TOKEN)
    runtime = app.extensions["prelabel"]
    setup = ls_request("setup")
    setup.update(project="7.1795806764", schema=REFERENCE_CONFIG)
    app.test_client().post("/setup", json=setup)
    runtime.queue.enqueue(
        ProjectKey("7", 1795806764), "predict", reason="PROMOTED", payload={"select": True}
    )
    result = runtime.run_job(runtime.queue.claim("test"))
    assert (result["done"], result["skipped"], result["selected"]) == (0, 1, False)
    assert ("PATCH", "/api/projects/7") not in ls.requests


@pytest.mark.parametrize(
    ("body", "status"),
    [({"select": "yes"}, 400), ({"everything": True}, 400), ([1], 400), (None, 400)],
)
def test_bulk_predict_requests_are_checked(make_app, ls_request, body, status):
    client = make_app().test_client()
    if body is None:  # a project /setup never told us about
        assert client.post("/projects/42/predict", json={}).status_code == status
        return
    setup = ls_request("setup")
    setup["schema"] = REFERENCE_CONFIG
    client.post("/setup", json=setup)
    project = setup["project"]
    assert client.post(f"/projects/{project}/predict", json=body).status_code == status


def test_imported_tasks_are_pre_annotated_when_asked(make_app, ls_request):
    client = make_app(predict_new_tasks=True).test_client()
    answer = client.post("/webhook", json=ls_request("webhook_TASKS_CREATED")).get_json()
    assert answer["job"].startswith("predict-")
    quiet = make_app().test_client()
    assert "job" not in quiet.post("/webhook", json=ls_request("webhook_TASKS_CREATED")).get_json()


def test_the_selector_follows_once_label_studio_has_the_predictions(loopback):
    ls = FakeProjectLS([{"id": 1, "data": {}}])
    client = LabelStudioClient(loopback(ls), TOKEN)
    sync = SelectorSync(lambda state: client, delays=(0.05, 0.05, 5.0))
    state = ProjectState(ProjectKey("7", 1))

    def arrive_late():
        ls.tasks[1]["predictions"].append({"model_version": "v2", "result": []})

    import threading

    threading.Timer(0.02, arrive_late).start()  # LS stores them after /predict answered
    sync.served(state, "v2")
    sync.flush()
    assert ls.project["model_version"] == "v2"
    patches = [r for r in ls.requests if r == ("PATCH", "/api/projects/7")]
    sync.served(state, "v2")  # once per project and version
    sync.flush()
    assert [r for r in ls.requests if r == ("PATCH", "/api/projects/7")] == patches


def test_without_credentials_setup_says_which_setting_to_change(make_app, ls_request, caplog):
    client = make_app().test_client()
    setup = ls_request("setup")
    with caplog.at_level(logging.WARNING):
        version = client.post("/setup", json=setup).get_json()["model_version"]
        client.post("/setup", json=setup)
    advice = [
        r.getMessage() for r in caplog.records if "Use predictions to prelabel" in r.getMessage()
    ]
    assert len(advice) == 1 and repr(version) in advice[0]
