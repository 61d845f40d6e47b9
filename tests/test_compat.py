"""prelabel.compat: SDK-style models served through the core HTTP server (protocol §11)."""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import pytest

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
from prelabel.settings import CoreSettings
from prelabel.testing import fixture

MODELS = Path(__file__).parent / "compat_models"
SETUP = fixture("setup")["json"]
CONFIG = SETUP["schema"]
PROJECT = SETUP["project"]  # "1.1795806764", the same project as the recorded webhooks


def project_dir(tmp_path: Path, script: str) -> Path:
    target = tmp_path / "my_ml_backend"
    target.mkdir()
    shutil.copy(MODELS / script, target / "model.py")
    return target


@pytest.fixture
def compat_app(tmp_path):
    apps = []

    def build(script: str, *, start_jobs: bool = False, **overrides):
        settings = CoreSettings(
            model_dir=tmp_path / f"state{len(apps)}",
            label_studio_url=None,
            label_studio_api_key=None,
            **overrides,
        )
        app = make_app(
            project_dir(tmp_path / f"p{len(apps)}", script), settings, start_jobs=start_jobs
        )
        apps.append(app)
        return app

    (tmp_path / "p0").mkdir()
    (tmp_path / "p1").mkdir()
    yield build
    for app in apps:
        runner = app.extensions["prelabel"].job_runner
        if runner is not None:
            runner.stop(timeout=10)


def user_module(app):
    return sys.modules[app.extensions["prelabel"].backend.model_class.__module__]


def webhook(name: str, **task_changes):
    body = copy.deepcopy(fixture(f"webhook_{name}")["json"])
    if task_changes:
        body["task"]["data"] = task_changes["data"]
        body["annotation"]["result"][0]["value"]["choices"] = [task_changes["label"]]
    return body


def predict(client, texts):
    body = copy.deepcopy(fixture("predict_batch_text")["json"])
    template = body["tasks"][0]
    body["tasks"] = [{**template, "id": i + 10, "data": {"text": t}} for i, t in enumerate(texts)]
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["results"]


# -- the tutorial's sentiment backend ---------------------------------------------------------


def test_setup_reports_the_models_version_and_setup_runs_once_per_project(compat_app):
    app = compat_app("sentiment_model.py")
    client = app.test_client()
    for _ in range(3):
        answer = client.post("/setup", json=SETUP)
        assert answer.status_code == 200
        assert answer.get_json() == {"model_version": "sentiment-v1"}
    predict(client, ["I love it"])
    predict(client, ["meh"])
    assert user_module(app).SETUPS == ["1"]
    other = {**SETUP, "project": "7.1795806999"}
    assert client.post("/setup", json=other).get_json()["model_version"] == "sentiment-v1"
    assert user_module(app).SETUPS == ["1", "7"]


def test_recorded_batch_predict_gets_choices_with_scores(compat_app):
    client = compat_app("sentiment_model.py").test_client()
    client.post("/setup", json=SETUP)
    answer = client.post("/predict", json=fixture("predict_batch_text")["json"])
    results = answer.get_json()["results"]
    assert len(results) == 3
    for entry in results:
        # Untrained: no word counts, ties go to Positive with (0 + 1) / (0 + 2).
        assert entry["model_version"] == "sentiment-v1"
        assert entry["score"] == 0.5
        assert entry["result"] == [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Positive"]},
            }
        ]


def test_annotation_webhook_trains_in_the_background_and_the_new_version_is_served(
    compat_app, wait_job
):
    app = compat_app("sentiment_model.py", start_jobs=True)
    client = app.test_client()
    assert client.post("/setup", json=SETUP).get_json()["model_version"] == "sentiment-v1"
    answer = client.post(
        "/webhook", json=webhook("ANNOTATION_CREATED", data={"text": "I hate it"}, label="Negative")
    )
    assert answer.status_code == 200
    job = wait_job(client, answer.get_json()["job"])
    assert job["status"] == "succeeded", job
    assert job["result"]["version"] == "sentiment-v2"
    assert job["result"]["results"] == [{"model_version": "sentiment-v2", "words": 3}]
    # setup() sets "sentiment-v1" again on the recreated instance; the trained version stays.
    assert client.post("/setup", json=SETUP).get_json()["model_version"] == "sentiment-v2"
    hate, love = predict(client, ["they hate it", "I love cats"])
    assert hate["result"][0]["value"]["choices"] == ["Negative"]
    assert hate["score"] == pytest.approx((2 + 1) / (2 + 2))  # "hate", "it": Negative x1 each
    assert love["result"][0]["value"]["choices"] == ["Negative"]  # "i": Negative x1
    assert {hate["model_version"], love["model_version"]} == {"sentiment-v2"}
    # Serving instance, the training job's own instance, the serving instance after training.
    assert user_module(app).SETUPS == ["1", "1", "1"]
    assert "sentiment-v2" in client.get("/versions").get_json()["versions"]


def test_deletions_and_start_training_reach_fit_with_the_sdks_event_and_data(compat_app):
    app = compat_app("sentiment_model.py")
    client = app.test_client()
    state = app.extensions["prelabel"]
    client.post("/setup", json=SETUP)
    # The core cache never saw annotation 2, so only compat queues a job for the deletion.
    deleted = client.post("/webhook", json=webhook("ANNOTATIONS_DELETED"))
    assert deleted.status_code == 200 and deleted.get_json()["job"]
    started = client.post("/webhook", json=webhook("START_TRAINING"))
    assert started.status_code == 201
    assert started.get_json()["job"] == deleted.get_json()["job"]  # coalesced into one job
    ignored = client.post("/webhook", json=webhook("PROJECT_UPDATED"))
    assert "job" not in ignored.get_json()
    job = state.queue.claim("test")
    result = state.run_job(job)
    assert result["version"] == "sentiment-v3" and result["metrics"] == {"events": 2.0}
    assert client.post("/setup", json=SETUP).get_json()["model_version"] == "sentiment-v3"
    events = state.backend.store.get(PROJECT, "events")
    assert events == [
        ["ANNOTATIONS_DELETED", ["annotations", "project"]],
        ["START_TRAINING", ["project"]],
    ]
    assert state.run_job(job)["trained"] is False  # nothing left to deliver


def test_fit_uses_the_stored_config_when_the_event_carries_none(compat_app, caplog):
    """The tutorial model reads its controls from the config in setup(); /setup stored it."""
    app = compat_app("sentiment_model.py")
    client = app.test_client()
    state = app.extensions["prelabel"]
    client.post("/setup", json=SETUP)
    project = webhook("START_TRAINING")["project"]
    bare = {"action": "START_TRAINING", "project": {k: project[k] for k in ("id", "created_at")}}
    assert client.post("/webhook", json=bare).status_code == 201
    with caplog.at_level("WARNING"):
        result = state.run_job(state.queue.claim("test"))
    assert result["version"] == "sentiment-v2", result
    assert "without a label config" not in caplog.text  # it has one: the stored one


def test_start_training_trigger_keeps_annotation_events_from_fit(compat_app):
    app = compat_app("sentiment_model.py", train_trigger="start_training")
    client = app.test_client()
    state = app.extensions["prelabel"]
    client.post(
        "/webhook", json=webhook("ANNOTATION_CREATED", data={"text": "x"}, label="Positive")
    )
    assert state.backend.store.take_events(PROJECT) == []


# -- the template `label-studio-ml create` generates --------------------------------------------


def test_sdk_template_runs_unchanged_through_setup_predict_and_fit(compat_app, wait_job, capsys):
    app = compat_app("sdk_template_model.py", start_jobs=True)
    client = app.test_client()
    setup = {**SETUP, "extra_params": '{"threshold": 0.3}'}
    assert client.post("/setup", json=setup).get_json() == {"model_version": "0.0.1"}
    results = predict(client, ["a", "b"])
    assert results == [{"result": [], "score": None, "model_version": "0.0.1"}] * 2
    printed = capsys.readouterr().out
    assert "Extra params: {'threshold': 0.3}" in printed
    assert "'sentiment': {'type': 'Choices', 'to_name': ['text']" in printed
    job = client.post("/webhook", json=webhook("ANNOTATION_CREATED")).get_json()["job"]
    assert wait_job(client, job)["status"] == "succeeded"
    assert client.post("/setup", json=setup).get_json()["model_version"] == "my_new_model_version"
    assert app.extensions["prelabel"].backend.store.get(PROJECT, "my_data") == "my_new_data_value"
    assert predict(client, ["c"])[0]["model_version"] == "my_new_model_version"


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


def test_label_helpers_use_the_config(tmp_path):
    m = model(tmp_path)
    assert m.get_first_tag_occurence("RectangleLabels", "Image") == ("box", "img", "image")
    assert m.get_first_tag_occurence(("Choices", "rectanglelabels"), ("image",)) == (
        "box",
        "img",
        "image",
    )
    with pytest.raises(ValueError, match="No Choices control"):
        m.get_first_tag_occurence("Choices", "Text")
    assert m.build_label_map("box", ["car", "truck", "person", "dog"]) == {
        "car": "Car",
        "truck": "Car",
        "person": "Person",
    }
    with pytest.raises(AttributeError, match=r"self\.config"):
        m.label_interface  # noqa: B018


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
    with pytest.raises(ValueError, match="returned 2 predictions for 3 tasks"):
        b.normalise([{"result": []}] * 2, 3, "v1", config)
    with pytest.raises(TypeError, match="returned str"):
        b.normalise("oops", 1, "v1", config)


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
    with pytest.raises(BackendLoadError, match=r"from prelabel\.compat import LabelStudioMLBase"):
        load_model_class(sdk)
    with pytest.raises(BackendLoadError, match="prelabel create"):
        load_model_class(tmp_path / "missing")


def test_a_model_warns_only_when_its_project_has_no_config_at_all(tmp_path, caplog):
    store = CompatStore(tmp_path)
    with caplog.at_level("WARNING"), bound(Binding(store, "3")):
        LabelStudioMLBase(project_id="3")
        assert "LabelStudioMLBase created without a label config" in caplog.text
        caplog.clear()
        LabelStudioMLBase(project_id="3", label_config=IMAGE_CONFIG)  # stored for the project
        LabelStudioMLBase(project_id="3")
    assert "without a label config" not in caplog.text
