"""Errors the server used to keep to its log, surfaced where a user looks (issue #14, item 4).

* a backend whose settings cannot predict fails ``/setup`` (and ``/predict``) with the reason
  in the status line, which is the part of an error response Label Studio shows;
* tasks whose media cannot be fetched count as ``failed`` in ``/metrics``, not ``empty``;
* each project's last error is in ``/health`` (for callers with credentials) and ``/jobs``;
* a training job none of whose tasks loaded fails; one that lost some says how many;
* ``/metrics``' version follows training and rollback; a bare project id lists every
  generation's versions; a 413 names PRELABEL_MAX_REQUEST_MB.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.wrappers import Request, Response

from prelabel._engine.bulk_run import ProgressLine, predict_export
from prelabel._engine.runtime import build_runtime
from prelabel._server.errors import reason_phrase
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError
from prelabel.project import ProjectKey
from prelabel.settings import BackendSettings, CoreSettings
from prelabel.testing.reference import ReferenceBackend
from prelabel_textcls import TextClassifierBackend

PROJECT = "1.1795806764"  # the recorded fixtures' project (see test_server.py)
SENTIMENT = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""
#: The same, with each task's text being the URL of a text file served by Label Studio.
URL_SENTIMENT = SENTIMENT.replace('value="$text"/>', 'value="$text" valueType="url"/>')


def metric(client: Any, name: str, **labels: str) -> float | None:
    """A sample of ``/metrics``, or ``None`` when it is not there."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def setup_body(config: str, extra_params: Any = None) -> dict[str, Any]:
    return {
        "project": PROJECT,
        "schema": config,
        "hostname": "http://localhost:8080",
        "access_token": "",
        "extra_params": extra_params,
    }


def annotated(task_id: int, text: str, label: str) -> dict[str, Any]:
    result = [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
    return {
        "id": task_id,
        "data": {"text": text},
        "annotations": [{"id": task_id, "result": result}],
    }


def train(client: Any, wait_job: Any, tasks: list[dict[str, Any]], config: str) -> dict[str, Any]:
    body = {"project": PROJECT, "annotations": tasks, "label_config": config}
    response = client.post("/train", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    job: dict[str, Any] = wait_job(client, response.get_json()["job"], timeout=60)
    return job


# -- a backend that cannot predict fails /setup with the reason ----------------------------


class NeedsToken(ReferenceBackend):
    """Predicts only with a token (from the environment or a project's extra_params)."""

    class Settings(BackendSettings):
        token: str | None = None

    def check_settings(self, settings: BackendSettings) -> None:
        assert isinstance(settings, NeedsToken.Settings)
        if not settings.token:
            raise ConfigError("no token: set PRELABEL_REFERENCE_TOKEN, or token in extra_params")


def test_setup_of_a_backend_that_cannot_predict_fails_with_the_reason(make_app):
    client = make_app(NeedsToken()).test_client()

    refused = client.post("/setup", json=setup_body(SENTIMENT))

    # LS discards the body and shows "500 Server Error: <reason> for url: …" (protocol §2).
    assert refused.status == (
        "500 no token: set PRELABEL_REFERENCE_TOKEN, or token in extra_params"
    )
    assert refused.get_json() == {
        "error": "ConfigError",
        "message": "no token: set PRELABEL_REFERENCE_TOKEN, or token in extra_params",
    }
    body = {"project": PROJECT, "label_config": SENTIMENT, "tasks": [{"id": 1, "data": {}}]}
    assert client.post("/predict", json=body).status_code == 500
    (error,) = client.get("/health").get_json()["last_errors"].items()
    assert error[0] == PROJECT
    assert error[1]["source"] == "predict"
    assert error[1]["message"].startswith("no token")

    # A project that brings the token connects, and predicts.
    accepted = client.post("/setup", json=setup_body(SENTIMENT, '{"token": "t"}'))
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert client.post("/predict", json=body).status_code == 200


def test_bulk_prediction_of_a_backend_that_cannot_predict_stops_with_the_reason(tmp_path):
    runtime = build_runtime(NeedsToken(), CoreSettings(model_dir=tmp_path / "m"))
    source, out = tmp_path / "export.json", tmp_path / "import.json"
    source.write_text(json.dumps([{"id": 1, "data": {"text": "love it"}}]))

    with pytest.raises(ConfigError, match=r"^no token: set PRELABEL_REFERENCE_TOKEN"):
        predict_export(
            runtime, source, out, label_config=SENTIMENT, project=ProjectKey("1", 100),
            batch_size=8, concurrency=1, show=ProgressLine(interval=0),
        )  # fmt: skip
    assert not out.exists()  # no file of empty predictions to import


def test_reason_phrases_are_one_line_of_printable_ascii():
    assert reason_phrase("Model “x” — not found…\nsee the log") == (
        'Model "x" - not found... see the log'
    )
    assert reason_phrase("é") == "e"
    assert len(reason_phrase("x" * 5000)) == 500
    assert reason_phrase("\u4e2d\u6587") == ""  # nothing printable left: the standard phrase


def test_an_empty_reason_keeps_the_standard_phrase(make_app):
    class Chinese(ReferenceBackend):
        def check_config(self, config: LabelConfig) -> None:
            raise ConfigError("\u4e2d\u6587")

    response = make_app(Chinese()).test_client().post("/setup", json=setup_body(SENTIMENT))
    assert response.status == "500 INTERNAL SERVER ERROR"
    assert response.get_json()["message"] == "\u4e2d\u6587"


def test_last_errors_in_health_need_credentials_when_auth_is_on(make_app):
    app = make_app(NeedsToken(), basic_auth_user="u", basic_auth_pass="p")
    client = app.test_client()
    auth = {"Authorization": "Basic dTpw"}  # u:p
    assert client.post("/setup", json=setup_body(SENTIMENT), headers=auth).status_code == 500

    assert "last_errors" not in client.get("/health").get_json()
    shown = client.get("/health", headers=auth).get_json()["last_errors"]
    assert shown[PROJECT]["source"] == "setup"


def test_a_request_over_the_limit_names_the_setting(make_app, text_predict):
    client = make_app(max_request_mb=0.01).test_client()
    response = client.post("/predict", json=text_predict([(1, "x" * 20_000)]))
    assert response.status_code == 413
    message = (
        "The request body is larger than PRELABEL_MAX_REQUEST_MB (0.01 MB): raise that setting "
        "on the backend, or send fewer tasks per request."
    )
    assert response.get_json() == {"error": "RequestEntityTooLarge", "message": message}
    assert response.status == f"413 {message}"


# -- media that cannot be fetched ---------------------------------------------------------

TEXTS = {
    **{f"/data/upload/1/good{i}.txt": f"I love it, great {i}" for i in range(4)},
    **{f"/data/upload/1/bad{i}.txt": f"I hate it, awful {i}" for i in range(4)},
}


class LabelStudioStub:
    """Serves the good files of :data:`TEXTS`; everything else is refused as a bad token."""

    allowed: ClassVar[set[str]] = set(TEXTS)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        if request.path in self.allowed and request.headers.get("Authorization"):
            response = Response(TEXTS[request.path], content_type="text/plain")
        else:
            response = Response(
                '{"detail": "Invalid token."}', 401, content_type="application/json"
            )
        return response(environ, start_response)


def test_media_label_studio_refuses_counts_as_failed_and_is_the_last_error(
    make_app, loopback, wait_job
):
    ls = LabelStudioStub()
    url = loopback(ls)
    # No re-prediction after the promotion: that background job fails against the stub too,
    # and, finishing at its own time, could record the project's last error after /predict.
    app = make_app(
        TextClassifierBackend(),
        start_jobs=True,
        label_studio_url=url,
        label_studio_api_key="k",
        repredict=False,
    )
    client = app.test_client()
    assert client.post("/setup", json=setup_body(URL_SENTIMENT)).status_code == 200
    # Two of eight files cannot be fetched: the job trains on the rest and says so.
    ls.allowed = set(TEXTS) - {"/data/upload/1/good3.txt", "/data/upload/1/bad3.txt"}
    tasks = [
        annotated(i + 1, path, "Positive" if "good" in path else "Negative")
        for i, path in enumerate(TEXTS)
    ]
    job = train(client, wait_job, tasks, URL_SENTIMENT)
    assert job["status"] == "succeeded", job
    assert job["result"]["promoted"] is True
    assert job["result"]["unreadable_tasks"] == 2
    assert job["result"]["unreadable_error"].startswith(
        "task 8: Cannot fetch /data/upload/1/bad3.txt: Label Studio answered HTTP 401"
    )

    # Files not fetched (so not cached) before, and the token is now refused: each task
    # fails, none counts as empty.
    ls.allowed = set()
    body = {
        "project": PROJECT,
        "label_config": URL_SENTIMENT,
        "tasks": [{"id": 20 + i, "data": {"text": f"/data/upload/1/new{i}.txt"}} for i in range(3)],
    }
    results = client.post("/predict", json=body).get_json()["results"]
    assert [r["result"] for r in results] == [[], [], []]
    assert metric(client, "prelabel_predictions_total", backend="textcls", outcome="failed") == 3
    assert metric(client, "prelabel_predictions_total", backend="textcls", outcome="empty") is None
    error = client.get("/health").get_json()["last_errors"][PROJECT]
    assert error["source"] == "predict"
    assert error["message"].startswith(
        "3 of 3 tasks got no prediction; task 22: Cannot fetch /data/upload/1/new2.txt: "
        "Label Studio answered HTTP 401"
    )
    assert client.get(f"/jobs?project={PROJECT}").get_json()["last_errors"] == {PROJECT: error}
    # A bare project id selects every generation, as for the jobs themselves.
    assert client.get("/jobs?project=1").get_json()["last_errors"] == {PROJECT: error}


def test_a_training_job_whose_tasks_all_fail_to_load_fails(make_app, closed_url, wait_job):
    app = make_app(
        TextClassifierBackend(), start_jobs=True, label_studio_url=closed_url,
        label_studio_api_key="k",
    )  # fmt: skip
    client = app.test_client()
    tasks = [annotated(i + 1, path, "Positive") for i, path in enumerate(TEXTS)]

    job = train(client, wait_job, tasks, URL_SENTIMENT)

    assert job["status"] == "failed"
    assert job["error"].startswith(
        "MediaError: None of the 8 annotated tasks could be loaded, so there is nothing to train "
        f"on; task 8: Cannot fetch /data/upload/1/bad3.txt: cannot connect to {closed_url}"
    )
    error = client.get("/jobs").get_json()["last_errors"][PROJECT]
    assert error["source"] == "train"
    assert error["message"] == f"job {job['id']}: {job['error']}"


# -- versions -------------------------------------------------------------------------------


def test_the_version_metric_follows_training_and_rollback(make_app, wait_job):
    client = make_app(start_jobs=True).test_client()
    assert client.post("/setup", json=setup_body(SENTIMENT)).status_code == 200
    base = client.get("/health").get_json()["version"]

    def served() -> list[str]:
        text = client.get("/metrics").get_data(as_text=True)
        (family,) = [
            f
            for f in text_string_to_metric_families(text)
            if f.name == "prelabel_model_version_info"
        ]
        return [s.labels["version"] for s in family.samples if s.labels["project"] == PROJECT]

    assert served() == [base]
    for text in ("love it", "hate it"):
        label = "Positive" if "love" in text else "Negative"
        assert train(client, wait_job, [annotated(1, text, label)], SENTIMENT)["status"] == (
            "succeeded"
        )
    # No /setup since: the metric reads what the project is served with.
    assert served() == ["reference-2"]
    assert client.post(f"/projects/{PROJECT}/rollback").status_code == 200
    assert served() == ["reference-1"]


def test_a_bare_project_id_lists_the_versions_of_every_generation(make_app, wait_job):
    client = make_app(start_jobs=True).test_client()
    for generation in ("1.100", "1.200"):
        body = {
            "project": generation,
            "annotations": [annotated(1, "love it", "Positive")],
            "label_config": SENTIMENT,
        }
        job = wait_job(client, client.post("/train", json=body).get_json()["job"])
        assert job["status"] == "succeeded", job

    listed = client.get("/projects/1/versions").get_json()["versions"]
    assert sorted((v["project"], v["name"]) for v in listed) == [
        ("1.100", "reference-1"),
        ("1.200", "reference-1"),
    ]
    only = client.get("/projects/1.200/versions").get_json()["versions"]
    assert [(v["project"], v["name"]) for v in only] == [("1.200", "reference-1")]
    assert client.get("/projects/2/versions").get_json()["versions"] == []


@pytest.mark.parametrize("path", ["/projects/1/versions", "/jobs?project=1"])
def test_bare_ids_do_not_match_other_ids_with_the_same_digits(make_app, wait_job, path):
    client = make_app(start_jobs=True).test_client()
    body = {
        "project": "11.100",
        "annotations": [annotated(1, "love it", "Positive")],
        "label_config": SENTIMENT,
    }
    assert wait_job(client, client.post("/train", json=body).get_json()["job"])["status"] == (
        "succeeded"
    )
    answer = client.get(path).get_json()
    assert answer.get("versions", answer.get("jobs")) == []
