"""The HTTP server against the LS ⇄ backend protocol (docs/protocol.md §2-§7, §13-§14).

Expected values are written from the protocol by hand; recorded LS 1.23.2 requests come from
``prelabel.testing.fixture``. Fixtures (``make_app``, ``ls_request``…) are in conftest.py.
"""

from __future__ import annotations

import base64
import copy
import logging
from importlib import metadata
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from prelabel._engine.telemetry import MAX_DROPPED_SERIES, Telemetry
from prelabel.backend import Evaluation, TrainJob, TrainResult
from prelabel.project import ProjectKey
from prelabel.results import Prediction
from prelabel.settings import BackendSettings
from prelabel.testing import fixtures
from prelabel.testing.reference import ReferenceBackend

#: The project of the recorded text fixtures as /setup and /predict send it. The recorded
#: webhooks carry project id 1 created at 2026-11-27T19:12:44.385994Z = epoch 1795806764,
#: so they address the same project (protocol §4.1).
PROJECT = "1.1795806764"
KEY = ProjectKey("1", 1795806764)

#: ``Authorization: Basic dTpw`` is user ``u``, password ``p`` (protocol §2, E2b).
BASIC_UP = {"Authorization": "Basic dTpw"}

WEBHOOK_FIXTURES = [n for n in fixtures() if n.startswith("webhook_")]

#: Train after every annotation event (the default waits for PRELABEL_TRAIN_EVERY changes).
EVERY_EVENT = {"train_every": 1, "train_min_annotations": 1}


class ThresholdBackend(ReferenceBackend):
    """The reference backend with one setting, so E2/E2b's ``{"threshold": 0.3}`` is valid."""

    class Settings(BackendSettings):
        threshold: float = 0.5


def setup_version(client, body: dict[str, Any], path: str = "/setup", **kwargs: Any) -> str:
    response = client.post(path, json=body, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    version = response.get_json()["model_version"]
    assert isinstance(version, str) and version
    return version


def single(entry: Any) -> dict[str, Any]:
    """A per-task entry that must be one prediction object (not a nested list)."""
    assert isinstance(entry, dict), entry
    return entry


def json_error(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert isinstance(body.get("message"), str) and body["message"]
    return body


# -- replay of the recorded LS 1.23.2 requests (§13) ----------------------------------------


def test_health_replay_is_json_and_open_even_with_auth(make_app, ls_request):
    app = make_app(basic_auth_user="u", basic_auth_pass="p", api_token="tok")
    client = app.test_client()
    for path in ("/health", "/"):
        response = client.get(path)  # LS's /health carries no credentials we must need (E1)
        assert response.status_code == 200
        assert response.is_json
        assert response.get_json()["status"] == "UP"


def test_health_says_how_training_runs_and_when_nothing_runs_it(make_app):
    threaded = make_app(job_runner="thread", start_jobs=True).test_client()
    assert threaded.get("/health").get_json()["training"] == {
        "trains": True,
        "runner": "thread",
        "workers": 1,
    }
    external = make_app(job_runner="external").test_client()
    training = external.get("/health").get_json()["training"]
    assert training["workers"] == 0
    assert "no training worker is running" in training["problem"]
    assert "prelabel worker" in training["problem"]
    assert "prelabel_training_workers 0.0" in external.get("/metrics").get_data(as_text=True)


def test_setup_replay_null_extra_params(client, ls_request):
    body = ls_request("setup")
    assert body["extra_params"] is None
    version = setup_version(client, body)
    # Documented base version: "<backend name>-<distribution version>".
    dist = metadata.packages_distributions()["prelabel"][0]
    assert version == f"reference-{metadata.version(dist)}"
    # Idempotent: LS calls /setup all the time (§3.2).
    assert setup_version(client, body) == version


@pytest.mark.parametrize(
    "extra_params",
    ['{"threshold": 0.3}', {"threshold": 0.3}, None, ""],
    ids=["string-E2", "object-E2b", "null", "empty-string"],
)
def test_setup_accepts_string_object_and_null_extra_params(make_app, ls_request, extra_params):
    client = make_app(ThresholdBackend()).test_client()
    body = ls_request("setup")
    body["extra_params"] = extra_params
    setup_version(client, body)


def test_predict_batch_text_replay(client, ls_request):
    version = setup_version(client, ls_request("setup"))
    body = ls_request("predict_batch_text")
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == len(body["tasks"]) == 3
    for entry in results:
        entry = single(entry)
        assert isinstance(entry["result"], list)
        assert entry["model_version"] == version


def test_predict_keeps_task_order(client, ls_request, text_predict, choice_of):
    version = setup_version(client, ls_request("setup"))
    body = text_predict(
        [(11, "negative vibes"), (12, "meh"), (13, "so positive"), (14, "NEGATIVE")]
    )
    results = client.post("/predict", json=body).get_json()["results"]
    assert [choice_of(single(e)) for e in results] == [
        ["Negative"],
        None,
        ["Positive"],
        ["Negative"],
    ]
    # The empty task still has an entry, with a string version and a null score (§3.3).
    assert results[1] == {"result": [], "score": None, "model_version": version}
    assert all(e["model_version"] == version for e in results)


def test_predict_single_task_replay(client, ls_request):
    version = setup_version(client, ls_request("setup"))
    results = client.post("/predict", json=ls_request("predict_single_task_text")).get_json()[
        "results"
    ]
    assert len(results) == 1
    assert single(results[0])["model_version"] == version


def test_predict_interactive_text_replay_non_interactive_backend(client, ls_request):
    version = setup_version(client, ls_request("setup"))
    body = ls_request("predict_interactive_text")
    assert body["params"]["context"]["result"]  # a real interactive call
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == len(body["tasks"]) == 1
    # LS uses results[0] of an interactive call as an object (§5).
    assert single(results[0])["model_version"] == version


@pytest.mark.parametrize("name", ["predict_batch_image", "predict_interactive_image"])
def test_predict_image_replay_unsupported_config_is_422(client, name, ls_request):
    body = json_error(client.post("/predict", json=ls_request(name)), 422)
    assert "Choices" in body["message"]


@pytest.mark.parametrize("name", ["predict_batch_image", "predict_interactive_image"])
def test_predict_image_replay_with_choices_config(client, name, ls_request):
    body = ls_request(name)
    body["label_config"] = (
        '<View><Image name="image" value="$image"/><Choices name="kind" toName="image">'
        '<Choice value="Box"/></Choices></View>'
    )
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert len(results) == len(body["tasks"])
    assert all(isinstance(single(e)["model_version"], str) and e["model_version"] for e in results)


def test_versions_replay_lists_setup_version(client, ls_request):
    version = setup_version(client, ls_request("setup"))
    response = client.get("/versions")
    assert response.status_code == 200
    assert version in response.get_json()["versions"]


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_every_webhook_replay_is_2xx(client, ls_request, name):
    setup_version(client, ls_request("setup"))
    response = client.post("/webhook", json=ls_request(name))
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    assert response.is_json


def test_webhook_fixtures_cover_the_recorded_actions():
    assert {
        "webhook_ANNOTATION_CREATED",
        "webhook_ANNOTATION_UPDATED",
        "webhook_ANNOTATIONS_DELETED",
        "webhook_START_TRAINING",
        "webhook_TASKS_CREATED",
        "webhook_PROJECT_UPDATED",
    } <= set(WEBHOOK_FIXTURES)


class PrefetchingBackend(ThresholdBackend):
    """Records what ``prefetch`` sees; fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.seen: list[tuple[list[Any], Any]] = []

    def prefetch(self, tasks, ctx):
        self.seen.append((list(tasks), ctx))
        if self.fail:
            raise RuntimeError("cannot prefetch")


def test_tasks_created_hands_the_new_tasks_to_prefetch(make_app, ls_request):
    backend = PrefetchingBackend()
    client = make_app(backend).test_client()
    setup = ls_request("setup")
    setup["extra_params"] = {"threshold": 0.3}
    setup_version(client, setup)
    body = ls_request("webhook_TASKS_CREATED")
    response = client.post("/webhook", json=body)
    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    ((tasks, ctx),) = backend.seen
    assert [t["id"] for t in tasks] == [4] and tasks[0]["data"] == {
        "text": "new task after backend"
    }
    # The context is the project's: its stored config (the webhook's), settings and version.
    assert ctx.project == KEY
    assert ctx.label_config.control("sentiment").label_names == ("Positive", "Negative")
    assert ctx.extra_params == {"threshold": 0.3} and ctx.settings.threshold == 0.3
    assert ctx.model_version == backend.version and ctx.interaction == []


def test_a_failing_prefetch_never_fails_the_webhook(make_app, ls_request, caplog):
    backend = PrefetchingBackend(fail=True)
    client = make_app(backend).test_client()
    response = client.post("/webhook", json=ls_request("webhook_TASKS_CREATED"))
    assert response.status_code == 200
    assert len(backend.seen) == 1
    assert "could not prefetch" in caplog.text
    # Other events do not call it.
    client.post("/webhook", json=ls_request("webhook_PROJECT_UPDATED"))
    assert len(backend.seen) == 1


def test_webhook_unknown_action_is_200(client, ls_request):
    body = ls_request("webhook_PROJECT_UPDATED")
    body["action"] = "LABEL_LINK_CREATED"
    body["label_link"] = {"id": 1, "from_name": "sentiment"}
    response = client.post("/webhook", json=body)
    assert response.status_code == 200
    assert response.is_json


def test_webhook_without_action_is_400_json(client, ls_request):
    body = ls_request("webhook_ANNOTATION_CREATED")
    del body["action"]
    json_error(client.post("/webhook", json=body), 400)


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook"])
def test_non_json_body_is_400_json(client, path):
    json_error(client.post(path, data="{not json", content_type="application/json"), 400)


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook"])
@pytest.mark.parametrize(
    "body", [[1, 2], "text", 3, None], ids=["list", "string", "number", "null"]
)
def test_body_not_an_object_is_400(client, path, body):
    json_error(client.post(path, json=body), 400)


def test_predict_without_tasks_list_is_400(client, ls_request):
    body = ls_request("predict_batch_text")
    body["tasks"] = {"id": 1}
    json_error(client.post("/predict", json=body), 400)


# -- authentication (§2) ------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def auth_client(make_app):
    return make_app(basic_auth_user="u", basic_auth_pass="p", api_token="tok").test_client()


def test_basic_header_of_e2b_is_u_p():
    assert basic("u", "p") == BASIC_UP


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("u", "wrong"),
        basic("x", "p"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "tok"},
    ],
    ids=["missing", "wrong-password", "wrong-user", "malformed", "wrong-token", "no-scheme"],
)
def test_setup_without_valid_credentials_is_401(auth_client, ls_request, headers):
    response = auth_client.post("/setup", json=ls_request("setup"), headers=headers)
    json_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "headers", [BASIC_UP, {"Authorization": "Bearer tok"}], ids=["basic-E2b", "bearer"]
)
def test_valid_credentials_are_accepted_everywhere(auth_client, ls_request, headers):
    setup_version(auth_client, ls_request("setup"), headers=headers)
    predict = auth_client.post("/predict", json=ls_request("predict_batch_text"), headers=headers)
    assert predict.status_code == 200
    assert auth_client.get("/versions", headers=headers).status_code == 200
    webhook = auth_client.post(
        "/webhook", json=ls_request("webhook_TASKS_CREATED"), headers=headers
    )
    assert webhook.status_code == 200


def test_protected_endpoints_need_auth(auth_client, ls_request):
    json_error(auth_client.post("/predict", json=ls_request("predict_batch_text")), 401)
    json_error(auth_client.get("/versions"), 401)
    # Auto event webhooks carry no credentials (§2): they are refused without a header.
    json_error(auth_client.post("/webhook", json=ls_request("webhook_TASKS_CREATED")), 401)


# -- extra_params and label config validation at /setup -----------------------------------


@pytest.mark.parametrize(
    "extra_params",
    [{"tresholdd": 0.3}, '{"tresholdd": 0.3}'],
    ids=["object", "string"],
)
def test_setup_unknown_extra_param_is_422_naming_it(make_app, ls_request, extra_params):
    client = make_app(ThresholdBackend()).test_client()
    body = ls_request("setup")
    body["extra_params"] = extra_params
    assert "tresholdd" in json_error(client.post("/setup", json=body), 422)["message"]


def test_setup_extra_param_of_wrong_type_is_422(make_app, ls_request):
    client = make_app(ThresholdBackend()).test_client()
    body = ls_request("setup")
    body["extra_params"] = {"threshold": "high"}
    assert "threshold" in json_error(client.post("/setup", json=body), 422)["message"]


@pytest.mark.parametrize("extra_params", ["threshold=0.3", "[1, 2]", [1, 2]])
def test_setup_extra_params_not_a_json_object_is_422(client, ls_request, extra_params):
    body = ls_request("setup")
    body["extra_params"] = extra_params
    json_error(client.post("/setup", json=body), 422)


def test_setup_unsupported_label_config_is_422_naming_choices(client, ls_request):
    body = ls_request("setup")
    body["schema"] = (
        '<View><Text name="text" value="$text"/><Rating name="r" toName="text"/></View>'
    )
    assert "Choices" in json_error(client.post("/setup", json=body), 422)["message"]


def test_setup_without_schema_is_400(client, ls_request):
    body = ls_request("setup")
    del body["schema"]
    json_error(client.post("/setup", json=body), 400)


# -- training through HTTP (§7) -----------------------------------------------------------


def test_training_loop_promotes_serves_and_rolls_back(
    make_app, ls_request, annotation_webhook, text_predict, wait_job, choice_of
):
    client = make_app(start_jobs=True, **EVERY_EVENT).test_client()
    setup = ls_request("setup")
    base = setup_version(client, setup)
    texts = [(101, "what a day"), (102, "rainy again")]

    first = client.post(
        "/webhook",
        json=annotation_webhook(
            task_id=101, annotation_id=1001, text="what a day", label="Positive"
        ),
    )
    assert first.status_code in (200, 201)
    job = wait_job(client, first.get_json()["job"])
    assert job["status"] == "succeeded", job
    assert job["result"]["promoted"] is True

    # The first trained version of a project: "<backend name>-1".
    assert setup_version(client, setup) == "reference-1"
    versions = client.get("/versions").get_json()["versions"]
    assert "reference-1" in versions and base in versions
    results = client.post("/predict", json=text_predict(texts)).get_json()["results"]
    assert choice_of(results[0]) == ["Positive"]
    assert results[0]["score"] == 1.0
    assert results[0]["model_version"] == "reference-1"
    assert results[1] == {"result": [], "score": None, "model_version": "reference-1"}

    second = client.post(
        "/webhook",
        json=annotation_webhook(
            task_id=102, annotation_id=1002, text="rainy again", label="Negative"
        ),
    )
    job = wait_job(client, second.get_json()["job"])
    assert job["status"] == "succeeded", job
    assert setup_version(client, setup) == "reference-2"
    results = client.post("/predict", json=text_predict(texts)).get_json()["results"]
    assert [choice_of(e) for e in results] == [["Positive"], ["Negative"]]
    assert [e["score"] for e in results] == [1.0, 1.0]
    assert {e["model_version"] for e in results} == {"reference-2"}

    history = client.get(f"/projects/{PROJECT}/versions").get_json()["versions"]
    assert [(v["name"], v["status"]) for v in history] == [
        ("reference-2", "current"),
        ("reference-1", "previous"),
    ]

    rollback = client.post(f"/projects/{PROJECT}/rollback")
    assert rollback.status_code == 200
    assert rollback.get_json()["model_version"] == "reference-1"
    assert setup_version(client, setup) == "reference-1"
    results = client.post("/predict", json=text_predict(texts)).get_json()["results"]
    # reference-1 never saw "rainy again".
    assert [choice_of(e) for e in results] == [["Positive"], None]
    assert {e["model_version"] for e in results} == {"reference-1"}


def test_rollback_without_previous_version_is_404(client):
    json_error(client.post(f"/projects/{PROJECT}/rollback"), 404)


def test_rollback_to_a_named_version_over_http(make_app):
    client = make_app().test_client()
    runtime = client.application.extensions["prelabel"]
    key = ProjectKey.parse(PROJECT)
    for _ in range(3):
        with runtime.store.new_version_dir(key) as workdir:
            runtime.store.promote(key, workdir, name_prefix="reference", metrics={})
    named = client.post(f"/projects/{PROJECT}/rollback", json={"version": "reference-1"})
    assert named.get_json()["model_version"] == "reference-1"
    by_query = client.post(f"/projects/{PROJECT}/rollback?version=reference-3")
    assert by_query.get_json()["model_version"] == "reference-3"
    unknown = json_error(client.post(f"/projects/{PROJECT}/rollback", json={"version": "x"}), 404)
    assert "reference-3, reference-2, reference-1" in unknown["message"]


def test_unknown_job_is_404(client):
    json_error(client.get("/jobs/train-1-9999"), 404)


def test_start_training_without_ls_url_uses_cached_annotations(
    make_app, ls_request, annotation_webhook, wait_job
):
    client = make_app(start_jobs=True, train_trigger="start_training").test_client()
    event = client.post(
        "/webhook",
        json=annotation_webhook(task_id=7, annotation_id=70, text="cached text", label="Negative"),
    )
    assert event.status_code == 200
    assert "job" not in event.get_json()  # train_trigger=start_training: events only cache

    response = client.post("/webhook", json=ls_request("webhook_START_TRAINING"))
    assert response.status_code == 201
    body = response.get_json()
    assert isinstance(body["job"], str) and body["job"]  # LS records it (§7.4, E9)
    job = wait_job(client, body["job"])
    assert job["status"] == "succeeded", job
    assert job["result"]["promoted"] is True
    assert job["result"]["version"] == "reference-1"


def test_start_training_without_annotations_or_ls_url_fails_naming_label_studio_url(
    make_app, ls_request, wait_job
):
    client = make_app(start_jobs=True).test_client()
    response = client.post("/webhook", json=ls_request("webhook_START_TRAINING"))
    assert response.status_code == 201
    job = wait_job(client, response.get_json()["job"])
    assert job["status"] == "failed"
    assert "LABEL_STUDIO_URL" in job["error"]


def test_annotation_events_and_deletions_update_the_cache(make_app, ls_request):
    app = make_app()
    client = app.test_client()
    store = app.extensions["prelabel"].store
    assert store.annotation_count(KEY) == 0

    created = ls_request("webhook_ANNOTATION_CREATED")
    assert created["annotation"]["id"] == 1
    assert client.post("/webhook", json=created).status_code == 200
    assert store.annotation_count(KEY) == 1
    # An update of the same annotation replaces it.
    assert client.post("/webhook", json=ls_request("webhook_ANNOTATION_UPDATED")).status_code == 200
    assert store.annotation_count(KEY) == 1
    (task,) = store.annotated_tasks(KEY)
    assert task["annotations"][0]["result"][0]["value"] == {"choices": ["Positive"]}

    deleted = ls_request("webhook_ANNOTATIONS_DELETED")
    assert deleted["annotations"] == [{"id": 2}]  # recorded: another annotation
    assert client.post("/webhook", json=deleted).status_code == 200
    assert store.annotation_count(KEY) == 1
    deleted["annotations"] = [{"id": 1}]
    assert client.post("/webhook", json=deleted).status_code == 200
    assert store.annotation_count(KEY) == 0


def test_webhooks_while_runner_stopped_coalesce_into_one_job(make_app, annotation_webhook):
    client = make_app(start_jobs=False, **EVERY_EVENT).test_client()
    ids = []
    for n in range(3):
        body = annotation_webhook(
            task_id=20 + n, annotation_id=200 + n, text=f"t{n}", label="Positive"
        )
        response = client.post("/webhook", json=body)
        assert response.status_code == 200
        ids.append(response.get_json()["job"])
    assert len(set(ids)) == 1
    job = client.get(f"/jobs/{ids[0]}").get_json()
    assert job["status"] == "queued"
    assert job["coalesced"] == 3
    assert job["reason"] == "ANNOTATION_CREATED x3"
    listed = client.get("/jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == ids[:1]


# -- promotion gating ---------------------------------------------------------------------


class DegradingBackend(ReferenceBackend):
    """Trains correctly the first time; every later version predicts nothing at all."""

    BROKEN: ClassVar[str] = "broken"

    def __init__(self) -> None:
        super().__init__()
        self.fits = 0

    def fit(self, job: TrainJob) -> TrainResult | None:
        self.fits += 1
        result = super().fit(job)
        if self.fits >= 2:
            (job.workdir / self.BROKEN).write_text("1")
        return result

    def predict(self, tasks, ctx):
        if ctx.model_dir is not None and (ctx.model_dir / self.BROKEN).exists():
            return [Prediction.empty() for _ in tasks]
        return super().predict(tasks, ctx)


def _bulk_event(ls_request: Any, count: int = 20) -> dict[str, Any]:
    """ANNOTATIONS_CREATED for ``count`` text tasks, alternately Negative and Positive."""
    bulk = ls_request("webhook_ANNOTATION_CREATED")
    bulk["action"] = "ANNOTATIONS_CREATED"
    annotations, tasks = [], []
    for i in range(count):
        label = "Positive" if i % 2 else "Negative"
        task = {**copy.deepcopy(bulk["task"]), "id": 300 + i, "data": {"text": f"{label} no. {i}"}}
        annotation = copy.deepcopy(bulk["annotation"])
        annotation.update(id=3000 + i, task=300 + i)
        annotation["result"][0]["value"] = {"choices": [label]}
        tasks.append(task)
        annotations.append(annotation)
    bulk["task"], bulk["annotation"] = tasks, annotations
    return bulk


def test_worse_challenger_is_rejected_and_champion_stays(make_app, ls_request, wait_job, choice_of):
    app = make_app(
        DegradingBackend(), start_jobs=True, holdout_fraction=0.5, min_holdout=1, **EVERY_EVENT
    )
    client = app.test_client()
    setup = ls_request("setup")
    setup_version(client, setup)

    first = wait_job(
        client, client.post("/webhook", json=_bulk_event(ls_request)).get_json()["job"]
    )
    assert first["status"] == "succeeded", first
    assert first["result"]["promoted"] is True
    assert first["result"]["metrics"]["holdout_tasks"] >= 1  # the gate was applied
    assert setup_version(client, setup) == "reference-1"

    second_event = ls_request("webhook_ANNOTATION_CREATED")
    second_event["task"].update(id=400, data={"text": "Positive again"})
    second_event["annotation"].update(id=4000, task=400)
    second_event["annotation"]["result"][0]["value"] = {"choices": ["Positive"]}
    second = wait_job(client, client.post("/webhook", json=second_event).get_json()["job"])
    assert second["status"] == "succeeded", second
    assert second["result"]["promoted"] is False
    metrics = second["result"]["metrics"]
    assert metrics["holdout_agreement"] < metrics["champion_agreement"]

    assert setup_version(client, setup) == "reference-1"
    history = client.get(f"/projects/{PROJECT}/versions").get_json()["versions"]
    assert [(v["name"], v["status"]) for v in history] == [
        ("reference-2", "rejected"),
        ("reference-1", "current"),
    ]
    # A rejected version was never served, so LS never sees it.
    assert "reference-2" not in client.get("/versions").get_json()["versions"]
    predict = ls_request("predict_single_task_text")
    predict["tasks"][0]["data"] = {"text": "Negative no. 0"}
    (entry,) = client.post("/predict", json=predict).get_json()["results"]
    assert entry["model_version"] == "reference-1"
    assert choice_of(entry) == ["Negative"]


class SelfScoringBackend(ReferenceBackend):
    """Gates on its own metric: each version scores what ``fit`` wrote into it."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores
        self.evaluated: list[tuple[str, int, bool]] = []

    def fit(self, job: TrainJob) -> TrainResult | None:
        result = super().fit(job)
        (job.workdir / "quality").write_text(str(self.scores.pop(0)))
        return result

    def evaluate(self, tasks, ctx):
        annotated = all(t.get("annotations") for t in tasks)
        self.evaluated.append((ctx.model_version, len(tasks), annotated))
        if ctx.model_dir is None:
            return Evaluation("quality", 0.0)
        return Evaluation("quality", float((ctx.model_dir / "quality").read_text()))


def test_the_gate_uses_the_backends_own_metric(make_app, ls_request, wait_job):
    """Agreement would not change between versions; the backend's metric decides."""
    backend = SelfScoringBackend(scores=[0.8, 0.3])
    app = make_app(backend, start_jobs=True, holdout_fraction=0.5, min_holdout=1)
    client = app.test_client()
    setup = ls_request("setup")
    setup_version(client, setup)
    first = wait_job(
        client, client.post("/webhook", json=_bulk_event(ls_request)).get_json()["job"]
    )
    assert first["result"]["promoted"] is True
    assert first["result"]["metrics"]["holdout_quality"] == 0.8
    assert first["result"]["metrics"]["champion_quality"] == 0.0
    assert "holdout_agreement" not in first["result"]["metrics"]

    more = _bulk_event(ls_request, 22)
    second = wait_job(client, client.post("/webhook", json=more).get_json()["job"])
    assert second["result"]["promoted"] is False, second
    assert second["result"]["metrics"]["holdout_quality"] == 0.3
    assert second["result"]["metrics"]["champion_quality"] == 0.8
    assert setup_version(client, setup) == "reference-1"
    # Challenger and champion were scored on the same held-out tasks, annotations included.
    holdout = int(first["result"]["metrics"]["holdout_tasks"])
    assert backend.evaluated[:2] == [("challenger", holdout, True), ("champion", holdout, True)]


@pytest.mark.parametrize(("tolerance", "promoted"), [(0.0, False), (0.04, False), (0.06, True)])
def test_a_gate_tolerance_lets_a_within_noise_dip_through(
    make_app, ls_request, wait_job, tolerance, promoted
):
    backend = SelfScoringBackend(scores=[0.8, 0.75])
    client = make_app(
        backend, start_jobs=True, holdout_fraction=0.5, min_holdout=1, gate_tolerance=tolerance
    ).test_client()
    setup_version(client, ls_request("setup"))
    first = client.post("/webhook", json=_bulk_event(ls_request)).get_json()["job"]
    assert wait_job(client, first)["result"]["promoted"] is True
    second = client.post("/webhook", json=_bulk_event(ls_request, 22)).get_json()["job"]
    assert wait_job(client, second)["result"]["promoted"] is promoted


# -- control group and acceptance ---------------------------------------------------------


@pytest.mark.parametrize(("control_fraction", "group"), [(1.0, "control"), (0.0, "preannotated")])
def test_acceptance_group_of_an_annotated_task(
    make_app, ls_request, text_predict, annotation_webhook, choice_of, control_fraction, group
):
    client = make_app(control_fraction=control_fraction).test_client()
    version = setup_version(client, ls_request("setup"))
    (entry,) = client.post("/predict", json=text_predict([(5, "so negative")])).get_json()[
        "results"
    ]
    if group == "control":
        assert entry == {"result": [], "score": None, "model_version": version}
    else:
        assert choice_of(entry) == ["Negative"]

    event = annotation_webhook(task_id=5, annotation_id=50, text="so negative", label="Negative")
    assert event["annotation"]["lead_time"] == 1.5
    assert client.post("/webhook", json=event).status_code == 200
    stats = client.get(f"/acceptance?project={PROJECT}").get_json()["acceptance"]
    # The model said Negative (shown or not) and the annotator chose Negative: full agreement.
    assert stats == [
        {
            "project": PROJECT,
            "model_version": version,
            "group": group,
            "annotations": 1,
            "mean_agreement": 1.0,
            "exact_share": 1.0,
            "mean_lead_time": 1.5,
        }
    ]


# -- metrics, limits, mounting ------------------------------------------------------------


def test_metrics_are_prometheus_text(client, ls_request, text_predict):
    setup_version(client, ls_request("setup"))
    body = text_predict([(1, "so positive"), (2, "meh"), (3, "negative")])
    assert client.post("/predict", json=body).status_code == 200
    client.post("/predict", json=ls_request("predict_batch_image"))  # 422

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "prelabel_request_seconds_bucket{" in text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("prelabel_requests_total", endpoint="/setup", status="200") == 1
    assert value("prelabel_requests_total", endpoint="/predict", status="200") == 1
    assert value("prelabel_requests_total", endpoint="/predict", status="422") == 1
    assert value("prelabel_request_seconds_count", endpoint="/predict") == 2
    assert value("prelabel_predictions_total", backend="reference", outcome="predicted") == 2
    assert value("prelabel_predictions_total", backend="reference", outcome="empty") == 1
    for status in ("queued", "running", "succeeded", "failed"):
        assert value("prelabel_jobs", status=status) == 0


def test_what_a_backend_drops_reaches_metrics_by_reason_and_name(make_app, text_predict):
    class Dropping(ReferenceBackend):
        def predict(self, tasks, ctx):
            ctx.count_dropped("unmapped", "MISC", 2)
            ctx.count_dropped("unmapped", "never", 0)
            return super().predict(tasks, ctx)

    client = make_app(Dropping()).test_client()
    assert client.post("/predict", json=text_predict([(1, "so positive")])).status_code == 200
    assert client.post("/predict", json=text_predict([(2, "negative")])).status_code == 200
    samples = [
        (s.labels, s.value)
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for s in family.samples
        if s.name == "prelabel_dropped_total"
    ]
    assert samples == [({"backend": "reference", "reason": "unmapped", "name": "MISC"}, 4)]


def test_dropped_series_are_capped_and_the_rest_summed_as_other():
    telemetry = Telemetry("b", job_counts=dict)
    for i in range(MAX_DROPPED_SERIES + 5):
        telemetry.count_dropped("unmapped", f"tag{i}", 1)
    telemetry.count_dropped("unmapped", "tag0", 1)  # a known series keeps its name
    samples = {
        s.labels["name"]: s.value
        for family in text_string_to_metric_families(telemetry.render().decode())
        for s in family.samples
        if s.name == "prelabel_dropped_total"
    }
    assert len(samples) == MAX_DROPPED_SERIES + 1
    assert samples["tag0"] == 2 and samples["other"] == 5


def test_request_over_max_request_mb_is_413_json(make_app, text_predict):
    client = make_app(max_request_mb=0.01).test_client()  # 10.24 kB
    small = text_predict([(1, "so positive")])
    assert client.post("/predict", json=small).status_code == 200
    big = text_predict([(1, "x" * 20_000)])
    json_error(client.post("/predict", json=big), 413)


def test_serves_under_a_mount_prefix(make_app, ls_request):
    app = make_app(basic_auth_user="u", basic_auth_pass="p")
    client = Client(DispatcherMiddleware(NotFound(), {"/ml": app}))

    def path(endpoint: str) -> str:
        # What LS does with a stored URL (§2): add "/" if missing, then URL-join the endpoint.
        return urlsplit(urljoin("http://backend:9090/ml" + "/", endpoint)).path

    assert path("predict") == "/ml/predict"
    health = client.get(path("health"))  # open even with auth on
    assert health.status_code == 200 and health.is_json
    assert client.post(path("setup"), json=ls_request("setup")).status_code == 401
    version = setup_version(client, ls_request("setup"), path("setup"), headers=BASIC_UP)
    predict = client.post(path("predict"), json=ls_request("predict_batch_text"), headers=BASIC_UP)
    assert predict.status_code == 200
    assert {e["model_version"] for e in predict.get_json()["results"]} == {version}
    versions = client.get(path("versions"), headers=BASIC_UP).get_json()["versions"]
    assert version in versions
    webhook = client.post(
        path("webhook"), json=ls_request("webhook_TASKS_CREATED"), headers=BASIC_UP
    )
    assert webhook.status_code == 200
    # Outside the prefix there is nothing.
    assert client.get("/health").status_code == 404


def test_script_name_environ_prefix(client, ls_request):
    environ = {"SCRIPT_NAME": "/ml"}
    assert client.get("/health", environ_base=environ).status_code == 200
    version = setup_version(client, ls_request("setup"), environ_base=environ)
    results = client.post(
        "/predict", json=ls_request("predict_batch_text"), environ_base=environ
    ).get_json()["results"]
    assert {e["model_version"] for e in results} == {version}


def test_secrets_never_reach_the_log(make_app, ls_request, caplog):
    """Tokens and passwords LS sends (setup access_token, project task_data_password,
    basic-auth credentials) appear in no log line, even at DEBUG and on errors."""
    caplog.set_level(logging.DEBUG)
    client = make_app(basic_auth_user="u", basic_auth_pass="hunter2-pass").test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:hunter2-pass").decode()}
    setup = ls_request("setup")
    setup["access_token"] = "tok-SECRET-123"
    assert client.post("/setup", json=setup, headers=auth).status_code == 200
    bad = {"Authorization": "Basic " + base64.b64encode(b"u:wrong-SECRET-pw").decode()}
    assert client.post("/setup", json=setup, headers=bad).status_code == 401
    event = ls_request("webhook_ANNOTATION_CREATED")
    event["project"]["task_data_password"] = "tdp-SECRET-456"
    event["project"]["token"] = "ptok-SECRET-789"
    assert client.post("/webhook", json=event, headers=auth).status_code == 200
    setup["extra_params"] = {"no_such_option": "x-SECRET"}
    assert client.post("/setup", json=setup, headers=auth).status_code == 422
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (
        "hunter2-pass",
        "tok-SECRET-123",
        "wrong-SECRET-pw",
        "tdp-SECRET-456",
        "ptok-SECRET-789",
    ):
        assert secret not in logged
