"""Scenario: ``prelabel report`` on a project Label Studio pre-annotated and people annotated,
from LS's own JSON export and from the running backend's store: the same figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prelabel.errors import ConfigError
from prelabel.report import report_from_export, report_from_store

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_report_from_the_export_and_from_the_store_agree(
    ls, trainer, new_project, train_on, e2e, tmp_path
):
    project = new_project(backend=trainer)
    examples = e2e.corpus(60, 11)
    train_on(project, examples[:40])  # imported with their annotations, then Start Training
    ids = ls.import_texts(project, [e.text for e in examples[40:]])
    ls.retrieve_predictions(project)

    # Half the suggestions kept, half changed to the other label.
    kept = []
    for n, task_id in enumerate(ids):
        prediction = ls.only_prediction(task_id)
        shown = e2e.chosen(prediction["result"])
        assert shown in e2e.LABELS, prediction
        label = shown if n % 2 == 0 else next(x for x in e2e.LABELS if x != shown)
        ls.annotate(task_id, e2e.choice(label))
        kept.append(label == shown)
    version = prediction["model_version"]

    # The Export button's file lists predictions by id only: refused, with the way out.
    plain = tmp_path / "plain.json"
    plain.write_bytes(
        ls.call("GET", f"/api/projects/{project.id}/export", params={"exportType": "JSON"}).content
    )
    with pytest.raises(ConfigError, match="by id only") as refused:
        report_from_export(plain)
    assert "only_id" in str(refused.value)

    # A snapshot export with the predictions' content, as that message says.
    snapshot = ls.json(
        "POST",
        f"/api/projects/{project.id}/exports/",
        json={"serialization_options": {"predictions": {"only_id": False}}},
    )
    export = tmp_path / "export.json"
    export.write_bytes(
        ls.call(
            "GET",
            f"/api/projects/{project.id}/exports/{snapshot['id']}/download",
            params={"exportType": "JSON"},
        ).content
    )
    out = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "prelabel", "report", "--export", str(export), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert out.read_text().count('<img src="data:image/svg+xml;base64,') >= 4

    offline = report_from_export(export)
    (accepted,) = offline.acceptance
    assert (accepted.version, accepted.group) == (version, "preannotated")
    assert accepted.annotations == len(ids) == 20
    assert accepted.mean_agreement == pytest.approx(sum(kept) / len(kept))
    # Every task was predicted once; the 40 imported annotations predate their predictions.
    assert len(offline.scores) == 60
    assert any("40 annotations had no non-empty prediction" in n for n in offline.notes)
    (point,) = offline.learning_curve
    assert (point.name, point.annotations) == (version, 40)

    # The backend's store, read while it serves: the same acceptance, and the training run.
    (stored,) = report_from_store(trainer.model_dir, project.key)
    assert [(a.version, a.group, a.annotations) for a in stored.acceptance] == [
        (version, "preannotated", 20)
    ]
    assert stored.acceptance[0].mean_agreement == pytest.approx(accepted.mean_agreement)
    assert [(p.name, p.annotations) for p in stored.learning_curve] == [(version, 40)]
    assert stored.training is not None
    assert [(r.outcome, r.version) for r in stored.training] == [("promoted", version)]
    assert sorted(stored.scores) == pytest.approx(sorted(offline.scores))
