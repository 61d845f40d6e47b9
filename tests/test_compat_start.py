"""Each model of ``compat_models/`` (and the one ``prelabel create`` writes) served by
``prelabel start DIR`` and driven over HTTP with Label Studio's request shapes.

Label Studio itself is played by a small loopback app where a model needs it (its export API,
its uploads behind a legacy token); ``tests/e2e/test_compat.py`` runs models against the real
one. Expected values are worked out by hand from the inputs.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from werkzeug import Request, Response

from prelabel.cli import cli
from prelabel.testing import fixture

MODELS = Path(__file__).parent / "compat_models"
SETUP = fixture("setup")["json"]
PROJECT = SETUP["project"]  # "1.1795806764"
LS_KEY = "0123456789abcdef0123456789abcdef01234567"  # a legacy token: "Token <key>"


class LabelStudioStandIn:
    """LS's export API and uploads behind its legacy-token check; records what it was asked."""

    def __init__(self) -> None:
        self.url = ""
        self.exports: dict[str, list[dict[str, Any]]] = {}
        self.uploads: dict[str, bytes] = {}
        self.asked: list[str] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.asked.append(request.full_path.rstrip("?"))
        if request.headers.get("Authorization") != f"Token {LS_KEY}":
            response = Response('{"detail": "Invalid token."}', status=401)
        elif request.path in self.exports and request.args.get("exportType") == "JSON":
            response = Response(json.dumps(self.exports[request.path]), mimetype="application/json")
        elif request.path in self.uploads:
            response = Response(self.uploads[request.path], mimetype="text/plain")
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)


@pytest.fixture
def label_studio(loopback) -> LabelStudioStandIn:
    stand_in = LabelStudioStandIn()
    stand_in.url = loopback(stand_in)
    return stand_in


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Any]:
    """``started(directory, *options, env={})``: ``prelabel start`` on a free port; its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(directory: Path, *options: str, env: dict[str, str] | None = None) -> str:
        port = free_port()
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PRELABEL_", "LABEL_STUDIO_")) and k != "MODEL_DIR"
        }
        log = tmp_path / f"start-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "prelabel", "start", str(directory), "-p", str(port),
                 "--host", "127.0.0.1", "--threads", "4", *options],
                env={**clean, **(env or {})},
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                return url
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
        pytest.fail(f"prelabel start did not answer /health in 60 s:\n{log.read_text()}")

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_with(tmp_path: Path, script: str) -> Path:
    directory = tmp_path / script.removesuffix(".py")
    directory.mkdir()
    shutil.copy(MODELS / script, directory / "model.py")
    return directory


def setup(url: str, config: str) -> str:
    answer = httpx.post(f"{url}/setup", json={**SETUP, "schema": config})
    assert answer.status_code == 200, answer.text
    version: str = answer.json()["model_version"]
    return version


def predict(url: str, config: str, tasks: list[dict[str, Any]], context=None) -> httpx.Response:
    body = copy.deepcopy(fixture("predict_batch_text")["json"])
    body.update(label_config=config, tasks=tasks)
    body["params"]["context"] = context
    return httpx.post(f"{url}/predict", json=body, timeout=60)


def results(url: str, config: str, tasks: list[dict[str, Any]], context=None) -> list[Any]:
    answer = predict(url, config, tasks, context)
    assert answer.status_code == 200, answer.text
    out: list[Any] = answer.json()["results"]
    return out


def wait_job(url: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{url}/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    pytest.fail(f"job {job_id} still running after 60 s")


def without_ids(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in regions]


# -- the template `prelabel create` writes ------------------------------------------------------


def test_created_project_serves_behind_basic_auth_and_keeps_state_in_the_project(tmp_path, started):
    project = tmp_path / "my_ml_backend"
    assert CliRunner().invoke(cli, ["create", str(project)]).exit_code == 0
    url = started(project, "--basic-auth-user", "u", "--basic-auth-pass", "p")
    assert httpx.post(f"{url}/setup", json=SETUP).status_code == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    answer = httpx.post(f"{url}/setup", json=SETUP, headers=auth)
    assert answer.status_code == 200 and answer.json() == {"model_version": "starter-1"}
    body = fixture("predict_batch_text")["json"]  # "I love it", "I hate it", "so so"
    out = httpx.post(f"{url}/predict", json=body, headers=auth).json()["results"]
    assert [entry["result"] for entry in out] == [[], [], []]  # no choice named in the texts
    assert (project / "data" / "models" / "prelabel.db").is_file()


# -- a label_interface-driven text classifier, trained by LS's events ---------------------------


def annotation(task_id: int, annotation_id: int, text: str, label: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("webhook_ANNOTATION_CREATED")["json"])
    body["task"].update(id=task_id, data={"text": text})
    body["annotation"].update(id=annotation_id, task=task_id)
    body["annotation"]["result"][0]["value"]["choices"] = [label]
    return body


def choice(entry: dict[str, Any]) -> str:
    (region,) = entry["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "sentiment",
        "text",
        "choices",
    )
    label: str = region["value"]["choices"][0]
    return label


def test_text_classifier_learns_from_annotation_events_and_start_training(
    tmp_path, started, label_studio
):
    config = SETUP["schema"]
    project = project_with(tmp_path, "text_classifier.py")
    url = started(
        project, env={"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": LS_KEY}
    )
    assert setup(url, config) == "textclf-0"
    tasks = [
        {"id": 7, "data": {"text": "dreadful awful day"}},
        {"id": 8, "data": {"text": "lovely"}},
    ]
    assert [e["result"] for e in results(url, config, tasks)] == [[], []]  # untrained

    for event in (
        annotation(1, 11, "awful dreadful", "Negative"),
        annotation(2, 12, "lovely", "Positive"),
    ):
        answer = httpx.post(f"{url}/webhook", json=event)
        assert answer.status_code == 200, answer.text
        assert wait_job(url, answer.json()["job"])["status"] == "succeeded"
    assert setup(url, config) == "textclf-2"  # one bump per event
    negative, positive = results(url, config, tasks)
    assert (choice(negative), choice(positive)) == ("Negative", "Positive")
    assert negative["model_version"] == "textclf-2" and 0.5 < negative["score"] <= 1

    # Start Training: the model re-reads every annotation from LS's export API.
    chose_positive = {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
    label_studio.exports["/api/projects/1/export"] = [
        {"id": 3, "data": {"text": "dreadful"},
         "annotations": [{"id": 31, "was_cancelled": False, "result": [chose_positive]}]},
    ]  # fmt: skip
    answer = httpx.post(f"{url}/webhook", json=fixture("webhook_START_TRAINING")["json"])
    assert answer.status_code == 201
    job = wait_job(url, answer.json()["job"])
    assert job["result"]["results"] == [{"model_version": "textclf-3", "examples": 1}], job
    # The model read the export; prelabel itself only looked at the project's selector.
    exports = [path for path in label_studio.asked if "/export" in path]
    assert exports == ["/api/projects/1/export?exportType=JSON"]
    assert {choice(e) for e in results(url, config, tasks)} == {"Positive"}
    saved = sorted(p.name for p in (project / "data" / "models").glob("*.pkl"))
    assert saved == ["project1-textclf-1.pkl", "project1-textclf-2.pkl", "project1-textclf-3.pkl"]


# -- NER with get_first_tag_occurence('Labels', 'Text') -------------------------------------------

NER_CONFIG = """<View>
  <Labels name="entities" toName="body">
    <Label value="When" predicted_values="DATE"/><Label value="MONEY"/>
    <Label value="Mail" predicted_values="EMAIL"/>
  </Labels>
  <Text name="body" value="$body"/>
</View>"""


def test_ner_model_tags_spans_with_the_configs_labels(tmp_path, started):
    url = started(project_with(tmp_path, "ner_model.py"))
    assert setup(url, NER_CONFIG) == "patterns-2024.1"
    text = "Paid $12.50 on 2024-03-05 to bob@example.com, 20% off."
    tagged, empty = results(
        url, NER_CONFIG, [{"id": 1, "data": {"body": text}}, {"id": 2, "data": {}}]
    )

    def span(part: str, label: str, score: float) -> dict[str, Any]:
        start = text.index(part)
        value = {"start": start, "end": start + len(part), "text": part, "labels": [label]}
        return {
            "from_name": "entities",
            "to_name": "body",
            "type": "labels",
            "value": value,
            "score": score,
        }

    # PERCENT has no label in this config, so "20%" is not tagged; spans come in text order.
    assert tagged["result"] == [
        span("$12.50", "MONEY", 0.9),
        span("2024-03-05", "When", 0.95),
        span("bob@example.com", "Mail", 0.85),
    ]
    assert tagged["score"] == 0.85  # the least confident span
    assert empty == {"result": [], "score": None, "model_version": "patterns-2024.1"}


# -- an interactive model reading context['result'] ---------------------------------------------

SPAN_CONFIG = (
    '<View><Labels name="ner" toName="text"><Label value="PER"/></Labels>'
    '<Text name="text" value="$text"/></View>'
)
STORY = "Alice met Bob. Later alice left; Malice is not a name."


def marked(text: str, start: int, end: int) -> dict[str, Any]:
    value = {"start": start, "end": end, "text": text, "labels": ["PER"]}
    region = {"from_name": "ner", "to_name": "text", "type": "labels", "value": value}
    return {"result": [{**region, "origin": "manual"}]}


def test_interactive_model_answers_the_annotators_selection(tmp_path, started):
    url = started(project_with(tmp_path, "interactive_model.py"))
    task = [{"id": 4, "data": {"text": STORY}}]
    assert setup(url, SPAN_CONFIG) == "span-finder-1"
    # Opening a task (no context): nothing to suggest.
    assert results(url, SPAN_CONFIG, task)[0]["result"] == []

    (answer,) = results(url, SPAN_CONFIG, task, context=marked("Alice", 0, 5))
    start = STORY.index("alice")  # "Malice" is not the word alice
    assert without_ids(answer["result"]) == [
        {"from_name": "ner", "to_name": "text", "type": "labels",
         "value": {"start": start, "end": start + 5, "text": "alice", "labels": ["PER"]}},
    ]  # fmt: skip
    assert answer["score"] == 1.0

    refused = predict(url, SPAN_CONFIG, task, context=marked("B", 10, 11))
    assert refused.status_code == 500
    # What LS shows the annotator: the status line's reason.
    assert refused.reason_phrase.startswith(
        "Prediction failed on the task: ValueError: Select at least 2 characters"
    )


# -- a detector reading control.attr, labels_attrs and predicted_values -------------------------

DETECTOR_CONFIG = """<View>
  <Image name="photo" value="$image"/>
  <RectangleLabels name="objects" toName="photo" model_score_threshold="0.6">
    <Label value="Vehicle" predicted_values="red"/><Label value="Blue"/>
    <Label value="Tree" predicted_values="green"/>
  </RectangleLabels>
  <RectangleLabels name="ignored" toName="photo" model_skip="true"><Label value="Red"/></RectangleLabels>
</View>"""


def png_data_uri() -> str:
    """100x50: a solid red and a solid blue patch, and two far-apart green pixels."""
    pixels = np.full((50, 100, 3), 255, dtype=np.uint8)
    pixels[5:25, 10:30] = (220, 30, 30)
    pixels[10:40, 60:90] = (30, 60, 220)
    pixels[45, 5] = pixels[2, 95] = (30, 160, 60)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_detector_follows_the_configs_attributes(tmp_path, started):
    url = started(project_with(tmp_path, "detector_model.py"))
    assert setup(url, DETECTOR_CONFIG) == "colours-1.0.0"
    (entry,) = results(url, DETECTOR_CONFIG, [{"id": 9, "data": {"image": png_data_uri()}}])

    def box(label: str, x: float, y: float, width: float, height: float) -> dict[str, Any]:
        return {
            "from_name": "objects", "to_name": "photo", "type": "rectanglelabels",
            "original_width": 100, "original_height": 50, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": width, "height": height, "rotation": 0,
                      "rectanglelabels": [label]},
            "score": 1.0,
        }  # fmt: skip

    # Red via predicted_values, blue by the label's name; the green pixels fill almost none of
    # their box (under model_score_threshold); the model_skip control gets nothing.
    assert entry["result"] == [box("Vehicle", 10, 10, 20, 40), box("Blue", 60, 20, 30, 60)]
    assert entry["score"] == 1.0


# -- get_local_path on a Label Studio upload ---------------------------------------------------

SUMMARY_CONFIG = """<View>
  <Text name="document" value="$text" valueType="url"/>
  <TextArea name="summary" toName="document"/>
  <Number name="words" toName="document"/>
</View>"""


def test_upload_reader_fetches_the_upload_from_label_studio(tmp_path, started, label_studio):
    label_studio.uploads["/data/upload/1/5f3e-report.txt"] = (
        b"Quarterly results are in. Revenue grew!"
    )
    url = started(
        project_with(tmp_path, "upload_reader_model.py"),
        env={"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": LS_KEY},
    )
    assert setup(url, SUMMARY_CONFIG) == "summary-1"
    task = {"id": 5, "data": {"text": "/data/upload/1/5f3e-report.txt"}}
    (entry,) = results(url, SUMMARY_CONFIG, [task])
    assert entry["result"] == [
        {"from_name": "summary", "to_name": "document", "type": "textarea",
         "value": {"text": ["Quarterly results are in."]}},
        {"from_name": "words", "to_name": "document", "type": "number", "value": {"number": 6}},
    ]  # fmt: skip
    # The upload, fetched once (prelabel itself may look at the project's selector).
    assert [p for p in label_studio.asked if p.startswith("/data/")] == [
        "/data/upload/1/5f3e-report.txt"
    ]

    missing = predict(url, SUMMARY_CONFIG, [{"id": 6, "data": {"text": "/data/upload/1/gone.txt"}}])
    assert missing.status_code == 422  # MediaError: which URL, why, and the fix
    assert "/data/upload/1/gone.txt" in missing.reason_phrase
