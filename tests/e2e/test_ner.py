"""Issue 16: named entities in a real Label Studio: pre-annotate, annotate, train, predict better.

The base model is the tiny BERT of ``prelabel_ner.synthetic``, trained here on people and places
only. The project also labels organisations, which the base model cannot name: annotations
made through LS's API (each one an ANNOTATION_CREATED webhook) train a version in the
background that finds them too, and LS stores its predictions with exact code-point offsets.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prelabel.config import LabelConfig
from prelabel_ner.synthetic import (
    HTML_CONFIG,
    build_tiny_model,
    corpus,
    html_task,
    span_results,
)
from prelabel_ner.training import Example, TrainOptions, fine_tune

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="Person" predicted_values="PER"/>
    <Label value="Location" predicted_values="LOC"/>
    <Label value="Organization"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""
LABELS = {"PER": "Person", "ORG": "Organization", "LOC": "Location"}
#: Fast learning for the tiny model (a real deployment keeps the defaults).
TRAINING = {
    "PRELABEL_NER_LEARNING_RATE": "3e-3",
    "PRELABEL_NER_EPOCHS": "20",
    "PRELABEL_NER_FREEZE_EMBEDDINGS": "false",
}


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A NER model with tags for PER and LOC, trained on texts whose organisations are unlabelled."""
    tmp = tmp_path_factory.mktemp("ner")
    tiny = build_tiny_model(tmp / "tiny")
    control = LabelConfig.parse(
        '<View><Labels name="n" toName="t"><Label value="PER"/><Label value="LOC"/></Labels>'
        '<Text name="t" value="$t"/></View>'
    ).control("n")
    examples = [Example(t, [s for s in spans if s[2] != "ORG"]) for t, spans in corpus(1, 150)]
    options = TrainOptions(
        epochs=15, batch_size=8, learning_rate=3e-3, max_length=512, overlap=16, seed=0,
        freeze_embeddings=False,
    )  # fmt: skip
    fine_tune(str(tiny), control, examples, tmp / "base", options)
    return tmp / "base"


@pytest.fixture(scope="module")
def ner_backend(backends, label_studio, base_model, e2e):
    prelabel = str(Path(sys.executable).with_name("prelabel"))
    argv = [prelabel, "serve", "ner", "--host", "127.0.0.1", "--port", "{port}"]
    env = {
        "HF_HUB_OFFLINE": "1",
        "PRELABEL_NER_MODEL": str(base_model),
        # At most three training jobs for 60 annotations (each job is a process that loads
        # the backend: seconds on a quiet machine).
        "PRELABEL_TRAIN_MIN_ANNOTATIONS": "10",
        "PRELABEL_TRAIN_EVERY": "25",
        **TRAINING,
    }
    backends.register("ner", e2e.BackendSpec(argv=argv, env=env))
    return backends.get("ner")


def stored_spans(ls, task_id, version):
    """The spans of the task's prediction of ``version`` in LS, checked against its text."""
    (prediction,) = [p for p in ls.predictions(task_id) if p["model_version"] == version]
    assert prediction["score"] is not None and 0.0 <= prediction["score"] <= 1.0, prediction
    text = ls.json("GET", f"/api/tasks/{task_id}")["data"]["text"]
    found = set()
    for region in prediction["result"]:
        assert (region["from_name"], region["to_name"], region["type"]) == (
            "label",
            "text",
            "labels",
        )
        value = region["value"]
        # LS stores Python str offsets (code points): the text must be exactly that slice.
        assert text[value["start"] : value["end"]] == value["text"], (text, value)
        assert 0.0 <= region["score"] <= 1.0
        found.add((value["start"], value["end"], value["labels"][0]))
    return found


def scores(ls, ids, examples, version):
    """Span F1 of the version's predictions stored in LS, and its recall of organisations."""
    hits = predicted = annotated = 0
    organisations, organisations_found = 0, 0
    for task_id, (_, spans) in zip(ids, examples, strict=True):
        gold = {(s, e, LABELS[k]) for s, e, k in spans}
        found = stored_spans(ls, task_id, version)
        hits += len(gold & found)
        predicted += len(found)
        annotated += len(gold)
        orgs = {g for g in gold if g[2] == "Organization"}
        organisations += len(orgs)
        organisations_found += len(orgs & found)
    f1 = 2 * hits / (predicted + annotated) if predicted + annotated else 1.0
    return f1, organisations_found / organisations


def test_pre_annotate_annotate_train_and_predict_better(ls, ner_backend, new_project):
    project = new_project(CONFIG, backend=ner_backend)
    base = ls.ml(project.ml_id)["model_version"]
    held_out = corpus(2, 12)
    # An emoji before an entity, where UTF-16 offsets would be off by one.
    held_out[0] = (
        "Yesterday Anna Schmidt flew to Berlin 🎉 to meet Ravi Patel .",
        [(10, 22, "PER"), (31, 37, "LOC"), (48, 58, "PER")],
    )
    train = corpus(3, 60)
    test_ids = ls.import_texts(project, [text for text, _ in held_out])
    train_ids = ls.import_texts(project, [text for text, _ in train])

    ls.retrieve_predictions(project)
    before, organisations_before = scores(ls, test_ids, held_out, base)
    for task_id in train_ids:
        assert len(ls.predictions(task_id)) == 1  # one prediction per task, also without entities
    labels_before = {label for i in test_ids for *_, label in stored_spans(ls, i, base)}
    assert labels_before <= {"Person", "Location"}  # the base model has no organisations
    assert (48, 58, "Person") in stored_spans(ls, test_ids[0], base)

    for task_id, (text, spans) in zip(train_ids, train, strict=True):
        ls.annotate(task_id, span_results(text, spans))
    jobs = ner_backend.wait_jobs(project, timeout=600)
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    current = [v for v in ner_backend.versions(project) if v["status"] == "current"]
    assert len(current) == 1 and current[0]["name"] != base, ner_backend.versions(project)
    version = current[0]["name"]
    assert ls.ml(project.ml_id)["model_version"] == version

    ls.retrieve_predictions(project)
    after, organisations_after = scores(ls, test_ids, held_out, version)
    assert organisations_before == 0.0 and organisations_after >= 0.5, organisations_after
    assert after > before + 0.05, (before, after)


def test_hypertext_predictions_are_stored_in_ls_form(ls, ner_backend, new_project):
    project = new_project(HTML_CONFIG, backend=ner_backend)
    version = ls.ml(project.ml_id)["model_version"]
    tasks = [html_task(i, example, annotated=False) for i, example in enumerate(corpus(4, 5))]
    ids = ls.import_tasks(project, [{"data": t["data"]} for t in tasks])
    ls.retrieve_predictions(project)
    regions = []
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        assert prediction["model_version"] == version
        regions += prediction["result"]
    assert any(r["value"]["hypertextlabels"] == ["Person"] for r in regions), regions
    for region in regions:
        value = region["value"]
        assert region["type"] == "hypertextlabels"
        assert value["start"].startswith("/p[") and value["end"].startswith("/p[")
        assert value["globalOffsets"]["end"] - value["globalOffsets"]["start"] == len(value["text"])
