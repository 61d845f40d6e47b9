"""Models written for Label Studio's ML SDK, served by ``prelabel start``, driven by a real LS.

* ``text_classifier.py`` (``label_interface``, ``fit`` on LS's events, LS's export API through
  ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``) behind the basic auth set in LS's model form;
* ``upload_reader_model.py``: ``get_local_path`` on files uploaded to LS;
* ``interactive_model.py``: ``context['result']`` from LS's interactive route, and the message
  of its exception as LS hands it to the editor.

The backends get LABEL_STUDIO_URL and the session's legacy token (the e2e conftest's pool).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODELS = Path(__file__).resolve().parents[1] / "compat_models"
USER, PASSWORD, TOKEN = "ml-user", "compat-basic-pass", "compat-webhook-token"


def start_compat(backends, tmp_path_factory, e2e, script: str, *, auth: bool = False):
    """``prelabel start <dir>`` on a directory holding ``compat_models/<script>`` as model.py."""
    name = script.removesuffix(".py")
    directory = tmp_path_factory.mktemp(name)
    shutil.copy(MODELS / script, directory / "model.py")
    prelabel = str(Path(sys.executable).with_name("prelabel"))
    argv = [prelabel, "start", str(directory), "-p", "{port}", "--host", "127.0.0.1"]
    env = {}
    if auth:
        argv += ["--basic-auth-user", USER, "--basic-auth-pass", PASSWORD]
        # LS's event webhooks carry no basic auth: the project's webhook gets this bearer token.
        env["PRELABEL_API_TOKEN"] = TOKEN
    spec = e2e.BackendSpec(argv=argv, env=env, auth=(USER, PASSWORD) if auth else None)
    backends.register(name, spec)
    return backends.get(name)


def choice_and_score(prediction):
    (region,) = prediction["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "sentiment",
        "text",
        "choices",
    ), region
    (label,) = region["value"]["choices"]
    return label, prediction["score"]


def test_text_classifier_trains_on_label_studios_events_and_export(
    ls, backends, label_studio, tmp_path_factory, new_project, e2e
):
    backend = start_compat(backends, tmp_path_factory, e2e, "text_classifier.py", auth=True)
    project = new_project()
    connected = ls.connect(
        project, backend, auth_method="BASIC_AUTH", basic_auth_user=USER, basic_auth_pass=PASSWORD
    )
    assert (connected["state"], connected["model_version"]) == ("CO", "textclf-0"), connected
    (hook,) = ls.webhooks(project)
    ls.call(
        "PATCH",
        f"/api/webhooks/{hook['id']}",
        json={"headers": {"Authorization": f"Bearer {TOKEN}"}},
    )
    ids = ls.import_texts(project, ["awful dreadful service", "lovely kind staff", "so so"])

    ls.retrieve_predictions(project)
    # Untrained: one empty prediction per task, with the version /setup reported.
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        assert (prediction["result"], prediction["model_version"]) == ([], "textclf-0")

    # Each annotation reaches fit() through LS's ANNOTATION_CREATED webhook: one bump each.
    ls.annotate(ids[0], e2e.choice("Negative"))
    kept = ls.annotate(ids[1], e2e.choice("Positive"))
    jobs = backend.wait_jobs(project)
    assert [j["status"] for j in jobs] == ["succeeded"] * len(jobs), jobs
    assert ls.ml(project.ml_id)["model_version"] == "textclf-2"
    new_ids = ls.import_texts(project, ["dreadful", "lovely"])
    ls.retrieve_predictions(project, new_ids)
    negative, positive = (ls.only_prediction(task_id) for task_id in new_ids)
    assert (
        choice_and_score(negative)[0] == "Negative" and choice_and_score(positive)[0] == "Positive"
    )
    assert negative["model_version"] == positive["model_version"] == "textclf-2"

    # Deleting an annotation reaches fit() as ANNOTATIONS_DELETED: the model forgets it.
    ls.call("DELETE", f"/api/annotations/{kept['id']}")
    jobs = backend.wait_jobs(project)
    assert jobs[0]["reason"] == "ANNOTATIONS_DELETED", jobs
    assert jobs[0]["result"]["results"] == [{"model_version": "textclf-3", "examples": 1}], jobs

    # Start Training: fit() re-reads every annotation through LS's export API, including ones
    # imported with their tasks (imports send no annotation events).
    ls.import_tasks(
        project,
        [
            {"data": {"text": text}, "annotations": [{"result": e2e.choice("Positive")}]}
            for text in ("lovely lovely", "kind and lovely")
        ],
    )
    ls.train(project)
    jobs = backend.wait_jobs(project)
    assert (jobs[0]["reason"], jobs[0]["status"]) == ("START_TRAINING", "succeeded"), jobs
    assert jobs[0]["result"]["results"] == [{"model_version": "textclf-4", "examples": 3}]
    assert ls.ml(project.ml_id)["model_version"] == "textclf-4"
    (last,) = ls.import_texts(project, ["a lovely day"])
    ls.retrieve_predictions(project, [last])
    prediction = ls.only_prediction(last)
    assert choice_and_score(prediction)[0] == "Positive"
    assert prediction["model_version"] == "textclf-4"
    # Predictions made before keep their version.
    assert ls.only_prediction(new_ids[0])["model_version"] == "textclf-2"


SUMMARY_CONFIG = """<View>
  <Text name="document" value="$text" valueType="url"/>
  <TextArea name="summary" toName="document"/>
  <Number name="words" toName="document"/>
</View>"""


def test_upload_reader_reads_files_uploaded_to_label_studio(
    ls, backends, label_studio, tmp_path_factory, new_project, e2e
):
    backend = start_compat(backends, tmp_path_factory, e2e, "upload_reader_model.py")
    project = new_project(SUMMARY_CONFIG, backend=backend)
    files = {
        "minutes.txt": "The board met on Monday. Budgets were approved.",
        "memo.txt": "Short memo!",
    }
    ids = ls.upload_text_files(project, files)

    ls.retrieve_predictions(project)

    for task_id, (first, words) in zip(
        ids, [("The board met on Monday.", 8), ("Short memo!", 2)], strict=True
    ):
        prediction = ls.only_prediction(task_id)
        assert prediction["model_version"] == "summary-1"
        assert prediction["result"] == [
            {
                "from_name": "summary",
                "to_name": "document",
                "type": "textarea",
                "value": {"text": [first]},
            },
            {
                "from_name": "words",
                "to_name": "document",
                "type": "number",
                "value": {"number": words},
            },
        ], prediction


SPAN_CONFIG = """<View>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def selection(text, start, end):
    """A ``labels`` region as the editor sends it in ``context.result`` (protocol §5)."""
    value = {"start": start, "end": end, "text": text[start:end], "labels": ["PER"]}
    return {"id": "sel", "from_name": "ner", "to_name": "text", "type": "labels", "value": value}


def test_interactive_model_suggests_and_its_refusal_reaches_the_editor(
    ls, backends, label_studio, tmp_path_factory, new_project, e2e
):
    backend = start_compat(backends, tmp_path_factory, e2e, "interactive_model.py")
    project = new_project(SPAN_CONFIG, backend=backend, is_interactive=True)
    text = "Ann met Bob; later ann left."
    (task_id,) = ls.import_texts(project, [text])
    route = f"/api/ml/{project.ml_id}/interactive-annotating"

    answer = ls.json(
        "POST", route, json={"task": task_id, "context": {"result": [selection(text, 0, 3)]}}
    )

    assert "errors" not in answer, answer
    (suggested,) = answer["data"]["result"]
    start = text.index("ann")
    assert suggested["value"] == {
        "start": start,
        "end": start + 3,
        "text": "ann",
        "labels": ["PER"],
    }

    refused = ls.json(
        "POST", route, json={"task": task_id, "context": {"result": [selection(text, 4, 5)]}}
    )

    # The model raised: LS hands the editor the status line, which carries the message.
    (error,) = refused["errors"]
    assert error.startswith(
        "500 Server Error: Prediction failed on the task: ValueError: Select at least 2 characters"
    ), error
