"""Issue 4: a LabelStudioMLBase backend, unchanged, served by ``prelabel start`` to a real LS.

``tests/compat_models/sentiment_model.py`` is the SDK tutorial's sentiment model (only its import
changed): it reports ``sentiment-v1``, predicts from word counts learned in ``fit`` (ties go to
Positive with score (n + 1) / (total + 2)), and bumps its version once per event ``fit`` gets.
It runs behind basic auth set in LS's ML form, as ``prelabel start --basic-auth-*`` requires.
``tests/compat_models/sdk_template_model.py`` is the ``label-studio-ml create`` template (``0.0.1``,
empty predictions, ``fit`` sets ``my_new_model_version``), run the same way.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = Path(__file__).resolve().parents[1] / "compat_models" / "sentiment_model.py"
USER, PASSWORD, TOKEN = "ml-user", "compat-basic-pass", "compat-webhook-token"


def start_compat(backends, tmp_path_factory, e2e, model: Path, name: str):
    """``prelabel start <dir>`` on a directory holding ``model`` as ``model.py``."""
    directory = tmp_path_factory.mktemp(name)
    shutil.copy(model, directory / "model.py")
    prelabel = str(Path(sys.executable).with_name("prelabel"))
    argv = [
        prelabel, "start", str(directory), "-p", "{port}", "--host", "127.0.0.1",
        "--basic-auth-user", USER, "--basic-auth-pass", PASSWORD,
    ]  # fmt: skip
    # LS's event webhooks carry no basic auth: the project's webhook gets this bearer token.
    spec = e2e.BackendSpec(argv=argv, env={"PRELABEL_API_TOKEN": TOKEN}, auth=(USER, PASSWORD))
    backends.register(name, spec)
    return backends.get(name)


@pytest.fixture(scope="module")
def compat_backend(backends, label_studio, tmp_path_factory, e2e):
    """The tutorial-style sentiment model served by ``prelabel start``."""
    return start_compat(backends, tmp_path_factory, e2e, MODEL, "compat")


def choice_and_score(prediction):
    (region,) = prediction["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "sentiment",
        "text",
        "choices",
    ), region
    (label,) = region["value"]["choices"]
    return label, prediction["score"]


def test_sdk_model_connects_predicts_and_trains_through_label_studio(
    ls, compat_backend, new_project, e2e
):
    backend = compat_backend
    project = new_project()
    connected = ls.connect(
        project,
        backend,
        auth_method="BASIC_AUTH",
        basic_auth_user=USER,
        basic_auth_pass=PASSWORD,
    )
    assert (connected["state"], connected["model_version"]) == ("CO", "sentiment-v1"), connected
    (hook,) = ls.webhooks(project)
    ls.call(
        "PATCH",
        f"/api/webhooks/{hook['id']}",
        json={"headers": {"Authorization": f"Bearer {TOKEN}"}},
    )
    ids = ls.import_texts(project, ["I hate it", "great phone", "so so"])

    ls.retrieve_predictions(project)

    # Untrained: no word counts, so every task ties and gets Positive with (0 + 1) / (0 + 2).
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        assert prediction["model_version"] == "sentiment-v1", prediction
        assert choice_and_score(prediction) == ("Positive", 0.5), prediction

    # The annotation reaches fit() through LS's ANNOTATION_CREATED webhook: one bump, v2.
    ls.annotate(ids[0], e2e.choice("Negative"))
    (job,) = backend.wait_jobs(project)
    assert (job["reason"], job["status"]) == ("ANNOTATION_CREATED", "succeeded"), job
    assert job["result"]["version"] == "sentiment-v2", job
    assert ls.ml(project.ml_id)["model_version"] == "sentiment-v2"

    # Start Training reaches fit() as the SDK's START_TRAINING event: one more bump, v3.
    ls.train(project)
    jobs = backend.wait_jobs(project)
    assert len(jobs) == 2, jobs
    assert (jobs[0]["reason"], jobs[0]["status"]) == ("START_TRAINING", "succeeded"), jobs
    assert jobs[0]["result"]["version"] == "sentiment-v3", jobs
    # GET /api/ml/{id} asks /setup again: setup() sets "sentiment-v1", the trained version stays.
    assert ls.ml(project.ml_id)["model_version"] == "sentiment-v3"

    new_ids = ls.import_texts(project, ["they hate it", "I love cats"])
    ls.retrieve_predictions(project, new_ids)

    hate, love = (ls.only_prediction(task_id) for task_id in new_ids)
    assert hate["model_version"] == love["model_version"] == "sentiment-v3"
    # Learned from "I hate it" = Negative: "hate" and "it" count Negative once each.
    assert choice_and_score(hate) == ("Negative", pytest.approx((2 + 1) / (2 + 2)))
    assert choice_and_score(love) == ("Negative", pytest.approx((1 + 1) / (1 + 2)))  # "i"
    # The tasks predicted before training keep their sentiment-v1 prediction.
    assert ls.only_prediction(ids[1])["model_version"] == "sentiment-v1"


TEMPLATE = MODEL.with_name("sdk_template_model.py")


@pytest.fixture(scope="module")
def template_backend(backends, label_studio, tmp_path_factory, e2e):
    """The ``label-studio-ml create`` template served by ``prelabel start``."""
    return start_compat(backends, tmp_path_factory, e2e, TEMPLATE, "compat-template")


def test_sdk_template_connects_predicts_nothing_and_trains_through_label_studio(
    ls, template_backend, new_project
):
    backend = template_backend
    project = new_project()
    connected = ls.connect(
        project,
        backend,
        auth_method="BASIC_AUTH",
        basic_auth_user=USER,
        basic_auth_pass=PASSWORD,
    )
    assert (connected["state"], connected["model_version"]) == ("CO", "0.0.1"), connected
    ids = ls.import_texts(project, ["I hate it", "great phone"])

    ls.retrieve_predictions(project)

    # predict() returns ModelResponse(predictions=[]): the backend answers an empty result per
    # task, which LS stores as a prediction with no regions and no score.
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        assert (prediction["result"], prediction["score"]) == ([], None), prediction
        assert prediction["model_version"] == "0.0.1", prediction

    # Start Training: fit() runs once for START_TRAINING and sets "my_new_model_version".
    ls.train(project)
    (job,) = backend.wait_jobs(project)
    assert (job["reason"], job["status"], job["error"]) == ("START_TRAINING", "succeeded", None)
    assert job["result"]["version"] == "my_new_model_version", job
    assert "New data: my_new_data_value" in backend.log_text()
    assert "fit() completed successfully." in backend.log_text()
    assert ls.ml(project.ml_id)["model_version"] == "my_new_model_version"

    (new_id,) = ls.import_texts(project, ["so so"])
    ls.retrieve_predictions(project, [new_id])
    prediction = ls.only_prediction(new_id)
    assert (prediction["result"], prediction["model_version"]) == ([], "my_new_model_version")
    assert ls.only_prediction(ids[0])["model_version"] == "0.0.1"
