"""Issue 20: ``prelabel predict`` against a real Label Studio.

1,000 tasks of a live project, interrupted by Ctrl-C (SIGINT) mid-run and resumed: every
unlabeled task ends with exactly one prediction of the served version, checked in LS. And an
LS export pre-annotated offline, imported into another project.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PRELABEL = str(Path(sys.executable).with_name("prelabel"))


def predict_env(e2e, label_studio, backend):
    """The environment of the main backend: its model dir (trained versions), LS and token."""
    return e2e.clean_env(
        PRELABEL_MODEL_DIR=str(backend.model_dir),
        LABEL_STUDIO_URL=label_studio.url,
        LABEL_STUDIO_API_KEY=label_studio.token,
        PYTHONUNBUFFERED="1",
    )


def predictions_by_task(ls, project):
    """The project's predictions, grouped by task (one listing call)."""
    rows = ls.json("GET", "/api/predictions", params={"project": project.id})
    grouped: dict[int, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["task"], []).append(row)
    return grouped


@pytest.fixture
def trained(ls, backend, new_project, train_on, e2e):
    """A project connected to the main backend, trained on 20 annotated tasks; its version."""
    project = new_project(backend=backend)
    train_on(project, e2e.corpus(20, 31))
    version = ls.ml(project.ml_id)["model_version"]
    assert version != backend.get("/health")["version"]  # a trained version, not the base
    return project, version


def test_a_thousand_tasks_interrupted_and_resumed_end_with_one_prediction_each(
    ls, label_studio, backend, trained, e2e
):
    project, version = trained
    corpus = e2e.corpus(1000, 32)
    ids = ls.import_texts(project, [e.text for e in corpus])
    argv = [PRELABEL, "predict", "textcls", "--project", str(project.id), "--batch-size", "20"]
    env = predict_env(e2e, label_studio, backend)

    first = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not predictions_by_task(ls, project):  # Ctrl-C once the first chunk is in LS
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no prediction reached LS in 120 s"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=120)

    assert first.returncode == 130, (out, err)
    assert "Stopping after the batches in flight" in err
    stored = predictions_by_task(ls, project)
    assert 0 < len(stored) < len(ids), f"not interrupted mid-run: {len(stored)} tasks predicted"
    assert all(len(rows) == 1 for rows in stored.values())
    assert f"Stopped after {len(stored)} tasks" in out  # what it predicted, it stored

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)

    assert second.returncode == 0, (second.stdout, second.stderr)
    assert f"Done: {len(ids) - len(stored)} tasks predicted" in second.stdout
    final = predictions_by_task(ls, project)
    assert sorted(final) == sorted(ids), "gaps, or labelled tasks predicted"
    per_task = Counter(len(rows) for rows in final.values())
    assert per_task == {1: len(ids)}, f"duplicates: {per_task}"
    assert {row["model_version"] for rows in final.values() for row in rows} == {version}
    by_id = dict(zip(ids, corpus, strict=True))
    right = sum(e2e.chosen(rows[0]["result"]) == by_id[task].label for task, rows in final.items())
    assert right >= 0.9 * len(ids), f"{right} of {len(ids)} right: not the trained model"
    assert all(0.5 <= rows[0]["score"] <= 1 for rows in final.values())


def test_an_export_is_pre_annotated_offline_and_imported_with_its_predictions(
    ls, label_studio, backend, trained, new_project, e2e, tmp_path
):
    project, version = trained
    new = e2e.corpus(30, 33)
    ls.import_texts(project, [e.text for e in new])
    export = ls.json(
        "GET",
        f"/api/projects/{project.id}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
    )
    source, out = tmp_path / "export.json", tmp_path / "import.json"
    source.write_text(json.dumps(export))

    done = subprocess.run(
        [PRELABEL, "predict", "textcls", "--project", str(project.id), "--export", str(source),
         "--out", str(out)],
        env=predict_env(e2e, label_studio, backend), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Done: 30 tasks predicted" in done.stdout  # the 20 labelled ones are left alone
    copy = new_project()
    ls.call("POST", f"/api/projects/{copy.id}/import", json=json.loads(out.read_text()))
    tasks = {t["data"]["text"]: t for t in ls.tasks(copy)}
    assert len(tasks) == 50
    stored = predictions_by_task(ls, copy)
    for example in new:
        (prediction,) = stored[tasks[example.text]["id"]]
        assert prediction["model_version"] == version
        assert e2e.chosen(prediction["result"]) in e2e.LABELS
    right = sum(e2e.chosen(stored[tasks[e.text]["id"]][0]["result"]) == e.label for e in new)
    assert right >= 27, f"{right} of 30 right"
    annotated = [t for t in tasks.values() if t["total_annotations"]]
    assert len(annotated) == 20 and not any(t["id"] in stored for t in annotated)
