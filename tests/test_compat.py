"""prelabel.compat: SDK-style models served through the core HTTP server (protocol §11).

The text classifier of ``compat_models/`` runs through the Flask test client with recorded LS
requests; small models defined here pin how ``predict``'s failures and odd answers reach LS.
``test_compat_start.py`` runs every model of ``compat_models/`` through ``prelabel start``.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import pytest
from werkzeug import Request, Response

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue, bump_version
from prelabel.compat._config import parse_config
from prelabel.compat._store import CompatStore
from prelabel.compat.adapter import CompatBackend
from prelabel.compat.base import Binding, bound
from prelabel.compat.loader import load_model_class
from prelabel.compat.server import make_app
from prelabel.config import LabelConfig
from prelabel.errors import BackendLoadError
from prelabel.media import MediaResolver
from prelabel.results import Region
from prelabel.settings import CoreSettings
from prelabel.testing import fixture

MODELS = Path(__file__).parent / "compat_models"
SETUP = fixture("setup")["json"]
CONFIG = SETUP["schema"]  # Choices "sentiment" (Positive, Negative) on Text "text"
PROJECT = SETUP["project"]  # "1.1795806764", the same project as the recorded webhooks


@pytest.fixture
def compat_app(tmp_path, monkeypatch):
    """``compat_app(model, start_jobs=False, **core_settings)``: a script of compat_models/
    (copied as a project's model.py) or a model class, served by the core app."""
    apps = []
    # Model code keeps its files under $MODEL_DIR, as `prelabel start` sets it.
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "model-files"))
    (tmp_path / "model-files").mkdir()

    def build(model, *, start_jobs: bool = False, **overrides):
        n = len(apps)
        settings = CoreSettings(
            model_dir=tmp_path / f"state{n}",
            label_studio_url=None,
            label_studio_api_key=None,
            **overrides,
        )
        if isinstance(model, str):
            directory = tmp_path / f"project{n}" / "my_ml_backend"
            directory.mkdir(parents=True)
            shutil.copy(MODELS / model, directory / "model.py")
            model = directory
        app = make_app(model, settings, start_jobs=start_jobs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        runner = app.extensions["prelabel"].job_runner
        if runner is not None:
            runner.stop(timeout=10)


def predict(client, texts, *, status=200):
    body = copy.deepcopy(fixture("predict_batch_text")["json"])
    template = body["tasks"][0]
    body["tasks"] = [{**template, "id": i + 10, "data": {"text": t}} for i, t in enumerate(texts)]
    answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.get_data(as_text=True)
    return answer.get_json()["results"] if status == 200 else answer


def label_of(entry):
    (region,) = entry["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "sentiment",
        "text",
        "choices",
    )
    (label,) = region["value"]["choices"]
    return label


def train_now(app):
    """Run the project's pending training job here and now; the job's result."""
    state = app.extensions["prelabel"]
    job = state.queue.claim("test")
    result = state.run_job(job)
    state.queue.finish(job.id, result=result, worker_id="test")
    return result


# -- the text classifier: label_interface, fit on LS events -------------------------------------


def test_setup_reports_the_version_and_runs_once_per_project(compat_app, caplog):
    client = compat_app("text_classifier.py").test_client()
    with caplog.at_level("INFO"):
        for _ in range(3):
            answer = client.post("/setup", json=SETUP)
            assert answer.status_code == 200
            assert answer.get_json() == {"model_version": "textclf-0"}
        predict(client, ["I love it"])
        predict(client, ["meh"])
        other = {**SETUP, "project": "7.1795806999"}
        assert client.post("/setup", json=other).get_json()["model_version"] == "textclf-0"
    assert caplog.text.count("TextClassifier set up for project 1\n") == 1
    assert caplog.text.count("TextClassifier set up for project 7\n") == 1


def test_an_untrained_model_answers_every_task_with_an_empty_prediction(compat_app):
    client = compat_app("text_classifier.py").test_client()
    client.post("/setup", json=SETUP)
    results = client.post("/predict", json=fixture("predict_batch_text")["json"]).get_json()
    assert results == {"results": [{"result": [], "score": None, "model_version": "textclf-0"}] * 3}


def test_annotations_train_in_the_background_and_the_new_version_is_served(
    compat_app, wait_job, annotation_webhook, tmp_path
):
    client = compat_app("text_classifier.py", start_jobs=True).test_client()
    assert client.post("/setup", json=SETUP).get_json()["model_version"] == "textclf-0"
    jobs = [
        client.post("/webhook", json=annotation_webhook(**event)).get_json()["job"]
        for event in (
            dict(task_id=1, annotation_id=11, text="I hate this awful thing", label="Negative"),
            dict(task_id=2, annotation_id=12, text="I love this great thing", label="Positive"),
        )
    ]
    finished = [wait_job(client, job) for job in dict.fromkeys(jobs)]
    assert {job["status"] for job in finished} == {"succeeded"}
    # One fit call per event, each bumping once, whether the events shared a job or not (a
    # job started after both arrived delivers both; the next one then finds nothing to do).
    results = [r for job in finished for r in job["result"].get("results", [])]
    assert results == [
        {"model_version": "textclf-1", "examples": 1},
        {"model_version": "textclf-2", "examples": 2},
    ]
    # setup() sets "textclf-0" again on the recreated instance; the trained version stays.
    assert client.post("/setup", json=SETUP).get_json()["model_version"] == "textclf-2"
    hate, love = predict(client, ["awful awful", "great news"])
    assert (label_of(hate), label_of(love)) == ("Negative", "Positive")
    assert 0.5 < hate["score"] <= 1 and 0.5 < love["score"] <= 1
    assert hate["model_version"] == love["model_version"] == "textclf-2"
    assert "textclf-2" in client.get("/versions").get_json()["versions"]
    saved = sorted(p.name for p in (tmp_path / "model-files").glob("*.pkl"))
    assert saved == ["project1-textclf-1.pkl", "project1-textclf-2.pkl"]


@pytest.fixture
def label_studio_export(loopback):
    """A loopback stand-in for LS's export API: two usable annotations, one cancelled, one
    without a choice; the requests it got."""
    seen = []
    tasks = [
        {"id": 1, "data": {"text": "terrible service"}, "annotations": [
            {"id": 21, "was_cancelled": False, "result": [
                {"from_name": "sentiment", "to_name": "text", "type": "choices",
                 "value": {"choices": ["Negative"]}}]}]},
        {"id": 2, "data": {"text": "wonderful staff"}, "annotations": [
            {"id": 22, "was_cancelled": False, "result": [
                {"from_name": "sentiment", "to_name": "text", "type": "choices",
                 "value": {"choices": ["Positive"]}}]},
            {"id": 23, "was_cancelled": True, "result": []}]},
        {"id": 3, "data": {"text": "unlabelled"}, "annotations": [
            {"id": 24, "was_cancelled": False, "result": []}]},
    ]  # fmt: skip

    @Request.application
    def app(request: Request) -> Response:
        seen.append((request.path, dict(request.args), request.headers.get("Authorization")))
        return Response(__import__("json").dumps(tasks), content_type="application/json")

    return loopback(app), seen


def test_deletions_are_forgotten_and_start_training_rereads_label_studio(
    compat_app, annotation_webhook, label_studio_export, monkeypatch
):
    url, seen = label_studio_export
    # The model reads Label Studio's address and key from the environment, as SDK models do.
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "legacy-key")
    app = compat_app("text_classifier.py")
    client = app.test_client()
    client.post("/setup", json=SETUP)
    created = annotation_webhook(task_id=1, annotation_id=2, text="so bad", label="Negative")
    assert client.post("/webhook", json=created).status_code == 200
    assert train_now(app)["results"] == [{"model_version": "textclf-1", "examples": 1}]
    assert label_of(predict(client, ["bad"])[0]) == "Negative"

    # The recorded deletion is of annotation 2: the model forgets it and predicts nothing.
    deleted = client.post("/webhook", json=fixture("webhook_ANNOTATIONS_DELETED")["json"])
    assert deleted.status_code == 200 and deleted.get_json()["job"]
    assert train_now(app)["results"] == [{"model_version": "textclf-2", "examples": 0}]
    assert predict(client, ["bad"])[0]["result"] == []

    started = client.post("/webhook", json=fixture("webhook_START_TRAINING")["json"])
    assert started.status_code == 201
    assert train_now(app)["results"] == [{"model_version": "textclf-3", "examples": 2}]
    assert seen == [("/api/projects/1/export", {"exportType": "JSON"}, "Token legacy-key")]
    bad, good = predict(client, ["terrible", "wonderful"])
    assert (label_of(bad), label_of(good)) == ("Negative", "Positive")
    ignored = client.post("/webhook", json=fixture("webhook_PROJECT_UPDATED")["json"])
    assert "job" not in ignored.get_json()


def test_fit_uses_the_stored_config_when_the_event_carries_none(
    compat_app, annotation_webhook, caplog
):
    """The classifier finds its controls in setup(); /setup stored the config it needs."""
    app = compat_app("text_classifier.py")
    client = app.test_client()
    client.post("/setup", json=SETUP)
    body = annotation_webhook(task_id=1, annotation_id=5, text="fine", label="Positive")
    del body["project"]["label_config"]
    assert client.post("/webhook", json=body).status_code == 200
    with caplog.at_level("WARNING"):
        result = train_now(app)
    assert result["version"] == "textclf-1", result
    assert "without a label config" not in caplog.text  # it has one: the stored one


def test_start_training_trigger_keeps_annotation_events_from_fit(compat_app, annotation_webhook):
    app = compat_app("text_classifier.py", train_trigger="start_training")
    client = app.test_client()
    body = annotation_webhook(task_id=1, annotation_id=5, text="x", label="Positive")
    client.post("/webhook", json=body)
    assert app.extensions["prelabel"].backend.store.take_events(PROJECT) == []


# -- what predict's failures and odd answers become ---------------------------------------------


def sentiment(label):
    return {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [label]},
    }


class NeedsVowels(LabelStudioMLBase):
    """Raises for a text without a vowel; a prediction for the others."""

    def predict(self, tasks, context=None, **kwargs):
        out = []
        for task in tasks:
            text = task["data"]["text"]
            if not any(vowel in text for vowel in "aeiou"):
                raise ValueError(f"cannot read {text!r}\n(no vowel) — é")
            out.append({"result": [sentiment("Positive")], "score": 0.7})
        return out


def test_a_model_failing_on_every_task_makes_predict_fail_with_its_message(compat_app):
    client = compat_app(NeedsVowels).test_client()
    client.post("/setup", json=SETUP)
    answer = predict(client, ["xyz", "hmm"], status=500)
    message = "Prediction failed on all 2 tasks: ValueError: cannot read 'xyz'\n(no vowel) — é"
    assert answer.get_json() == {"error": "PredictionFailed", "message": message}
    # LS shows only the status line ("500 Server Error: <reason> for url: …"): one line, ASCII
    # (the dash as "-", the accent dropped from its letter).
    reason = "Prediction failed on all 2 tasks: ValueError: cannot read 'xyz' (no vowel) - e"
    assert answer.status == f"500 {reason}"
    single = predict(client, ["xyz"], status=500)
    assert single.get_json()["message"].startswith("Prediction failed on the task: ValueError")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'prelabel_predictions_total{backend="compat",outcome="failed"} 3.0' in metrics


def test_a_model_failing_on_some_tasks_leaves_the_others_predicted(compat_app):
    client = compat_app(NeedsVowels).test_client()
    version = client.post("/setup", json=SETUP).get_json()["model_version"]
    first, failed, last = predict(client, ["good", "xyz", "fine"])
    assert label_of(first) == label_of(last) == "Positive"
    assert failed == {"result": [], "score": None, "model_version": version}


class ReadsUploads(LabelStudioMLBase):
    def predict(self, tasks, context=None, **kwargs):
        return [{"result": [], "path": self.get_local_path(t["data"]["text"])} for t in tasks]


def test_a_prelabel_error_on_every_task_keeps_its_status_and_advice(compat_app):
    client = compat_app(ReadsUploads).test_client()
    answer = predict(client, ["/data/upload/1/a.txt", "/data/upload/1/b.txt"], status=422)
    assert answer.get_json()["error"] == "MediaError"
    assert "LABEL_STUDIO_URL" in answer.status  # the fix, where LS shows it


class SkipsEmptyTexts(LabelStudioMLBase):
    """Like several SDK examples: tasks it cannot read are left out of the answer."""

    def predict(self, tasks, context=None, **kwargs):
        return ModelResponse(
            predictions=[
                PredictionValue(result=[sentiment("Negative")], score=0.9)
                for task in tasks
                if task["data"]["text"].strip()
            ]
        )


def test_fewer_predictions_than_tasks_are_padded_and_logged_once(compat_app, caplog):
    client = compat_app(SkipsEmptyTexts).test_client()
    version = client.post("/setup", json=SETUP).get_json()["model_version"]
    with caplog.at_level("WARNING"):
        first, second, third = predict(client, ["bad", "worse", "  "])
    assert label_of(first) == label_of(second) == "Negative"
    assert third == {"result": [], "score": None, "model_version": version}
    mismatch = [r for r in caplog.records if "returned 2 predictions for 3 tasks" in r.message]
    assert len(mismatch) == 1 and "other 1 get empty predictions" in mismatch[0].message
    assert [r for r in caplog.records if r.name.startswith("prelabel.compat")] == mismatch


# -- the base class ---------------------------------------------------------------------------


def test_bump_version_bumps():
    assert bump_version("1.4.2") == "1.5.0"
    assert bump_version("0.0.1") == "0.1.0"
    assert bump_version("sentiment-v9") == "sentiment-v10"
    assert bump_version("v007") == "v008"
    assert bump_version("my_new_model_version") == "my_new_model_version-1"


def test_parse_config_matches_label_studios_own_parse():
    project = fixture("webhook_ANNOTATION_CREATED")["json"]["project"]
    assert (
        parse_config(LabelConfig.parse(project["label_config"])) == project["parsed_label_config"]
    )


IMAGE_CONFIG = (
    '<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img">'
    '<Label value="Car" predicted_values="car,truck"/><Label value="Person"/></RectangleLabels></View>'
)


def model(tmp_path, config=IMAGE_CONFIG, cls=LabelStudioMLBase, project="3"):
    with bound(Binding(CompatStore(tmp_path), project)):
        return cls(project_id=project, label_config=config)


def test_build_label_map_uses_predicted_values_then_names(tmp_path):
    m = model(tmp_path)
    assert m.build_label_map("box", ["car", "truck", "person", "dog"]) == {
        "car": "Car",
        "truck": "Car",
        "person": "Person",
    }


def test_state_is_per_project_any_json_and_shared_by_stores_on_one_dir(tmp_path):
    a, b = model(tmp_path, project="3"), model(tmp_path, project="4")
    a.set("weights", {"w": [1.5, 2]})
    assert a.has("weights") and not b.has("weights")
    assert CompatStore(tmp_path).get("3", "weights") == {"w": [1.5, 2]}
    assert a.model_version == "0.0.1"
    assert (
        a.bump_model_version() == "0.1.0" and model(tmp_path, project="3").model_version == "0.1.0"
    )
    with pytest.raises(TypeError, match="JSON-serialisable"):
        a.set("model", object())


def test_preload_task_data_reads_media(tmp_path):
    m = model(tmp_path)
    settings = CoreSettings(model_dir=tmp_path, label_studio_url=None, label_studio_api_key=None)
    m._binding = Binding(m._binding.store, "3", media=MediaResolver(settings))
    task = {"id": 1, "data": {"doc": "data:text/plain;base64,aGVsbG8=", "n": 2, "t": ["plain"]}}
    assert m.preload_task_data(task) == {"doc": "hello", "n": 2, "t": ["plain"]}
    path = m.preload_task_data(task, task["data"]["doc"], read_file=False)
    assert Path(path).read_bytes() == b"hello"
    # A missing key passed on as None stays None, as the SDK's examples expect.
    assert m.preload_task_data(task, task["data"].get("missing")) is None


# -- predict output normalisation ---------------------------------------------------------------


def backend(tmp_path):
    return CompatBackend(LabelStudioMLBase, CompatStore(tmp_path))


def region(label, **extra):
    return {
        "from_name": "box",
        "to_name": "img",
        "type": "rectanglelabels",
        "value": {"x": 1, "y": 2, "width": 3, "height": 4, "rectanglelabels": [label]},
        **extra,
    }


def test_normalise_accepts_every_shape_the_sdk_did(tmp_path, caplog):
    b, config = backend(tmp_path), LabelConfig.parse(IMAGE_CONFIG)
    empty = b.normalise(None, 2, "v1", config)
    assert [p.result for p in empty] == [[], []]
    flat = b.normalise([{"result": [region("Car", id="r1")], "score": "0.25"}], 1, "v1", config)
    assert flat[0].score == 0.25 and flat[0].model_version == "v1"
    assert flat[0].result[0].to_ls() == region("Car", id="r1")
    wrapped = b.normalise(
        {"predictions": [{"result": [], "model_version": "own"}]}, 1, "v1", config
    )
    assert wrapped[0].model_version == "own"
    several = b.normalise(
        ModelResponse(
            model_version="m2",
            predictions=[[PredictionValue(result=[region("Person")]), PredictionValue(score=0.9)]],
        ),
        1,
        "v1",
        config,
    )
    assert [p.model_version for p in several[0]] == ["m2", "m2"] and several[0][1].score == 0.9
    with caplog.at_level("WARNING"):
        kept = b.normalise([{"result": [region("Bus")]}], 1, "v1", config)
    assert kept[0].result[0].to_ls()["value"]["rectanglelabels"] == ["Bus"]
    assert "not in box's labels" in caplog.text
    with pytest.raises(ValueError, match="returned 3 predictions for 2 tasks"):
        b.normalise([{"result": []}] * 3, 2, "v1", config)
    with pytest.raises(TypeError, match="returned str"):
        b.normalise("oops", 1, "v1", config)


def test_regions_built_by_label_interface_serialise_as_regions(tmp_path):
    m = model(tmp_path)
    car = m.label_interface.get_control("box").label("Car", x=1, y=2, width=3, height=4)
    plain = Region("box", "img", "rectanglelabels", {"rectanglelabels": ["Person"]})
    (out,) = backend(tmp_path).normalise(
        ModelResponse(predictions=[PredictionValue(result=[car, plain], score=0.5)]),
        1,
        "v1",
        LabelConfig.parse(IMAGE_CONFIG),
    )
    assert [r.to_ls() for r in out.result] == [car.to_ls(), plain.to_ls()]
    assert "extra" not in out.result[1].to_ls() and "score" not in out.result[1].to_ls()


# -- loading model.py ---------------------------------------------------------------------------


def test_model_py_imports_its_helpers_and_sdk_imports_get_the_fix(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "helpers_for_compat_test.py").write_text("LABEL = 'Positive'\n")
    (good / "model.py").write_text(
        "from helpers_for_compat_test import LABEL\n"
        "from prelabel.compat import LabelStudioMLBase\n"
        "class M(LabelStudioMLBase):\n    label = LABEL\n"
    )
    assert load_model_class(good).label == "Positive"
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    (sdk / "model.py").write_text("from label_studio_ml.model import LabelStudioMLBase\n")
    with pytest.raises(BackendLoadError, match=r"from prelabel\.compat import LabelStudioMLBase, "):
        load_model_class(sdk)
    (sdk / "model.py").write_text(
        "from label_studio_sdk.label_interface.objects import PredictionValue\n"
    )
    with pytest.raises(BackendLoadError, match=r"PredictionValue, .* come from prelabel\.compat"):
        load_model_class(sdk)
    with pytest.raises(BackendLoadError, match="prelabel create"):
        load_model_class(tmp_path / "missing")


def test_sdk_names_without_a_counterpart_fail_at_import_with_the_alternative(tmp_path):
    directory = tmp_path / "decorated"
    directory.mkdir()
    (directory / "model.py").write_text("from prelabel.compat import predict_fn\n")
    with pytest.raises(BackendLoadError, match=r"no predict_fn: subclass LabelStudioMLBase"):
        load_model_class(directory)
    assert "prelabel.compat" in sys.modules  # the package itself still imports


def test_a_model_warns_only_when_its_project_has_no_config_at_all(tmp_path, caplog):
    store = CompatStore(tmp_path)
    with caplog.at_level("WARNING"), bound(Binding(store, "3")):
        LabelStudioMLBase(project_id="3")
        assert "LabelStudioMLBase created without a label config" in caplog.text
        caplog.clear()
        LabelStudioMLBase(project_id="3", label_config=IMAGE_CONFIG)  # stored for the project
        LabelStudioMLBase(project_id="3")
    assert "without a label config" not in caplog.text
