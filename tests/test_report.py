"""``prelabel report``: rendered from a store a real server filled, its numbers checked against
the store and against what the test itself did; from a Label Studio export; its errors.
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from prelabel._engine.acceptance import AcceptanceTracker
from prelabel._engine.jobs import JobQueue
from prelabel._engine.store import ProjectStore
from prelabel.cli import cli
from prelabel.errors import ConfigError
from prelabel.metrics.scoring import in_control_group
from prelabel.project import ProjectKey
from prelabel.report import render, report_from_export, report_from_store
from prelabel.testing.simulation import SimulatedAnnotator, chosen


class Tables(HTMLParser):
    """Every ``<table id=…>`` of a page as rows of cell texts; ``images``: the ``<img>`` sources."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table_id: str) -> list[dict[str, str]]:
        header, *body = self.tables[table_id]
        return [dict(zip(header, row, strict=True)) for row in body]


@pytest.fixture
def served_project(make_app, ls_request, text_predict, annotation_webhook, wait_job):
    """Three rounds of /predict → annotations by a simulated annotator → training, on a real
    app with a 30 % control group. Returns the model dir, project key and what was done."""
    app = make_app(start_jobs=True, control_fraction=0.3, holdout_fraction=0.3, min_holdout=3)
    client = app.test_client()
    setup = ls_request("setup")
    assert client.post("/setup", json=setup).status_code == 200
    rng = random.Random(3)
    annotator = SimulatedAnnotator(0.6, random.Random(4))
    done = []  # (control, predicted label or None, annotated label)
    task_id = 0
    for _ in range(3):
        batch = []
        for _ in range(30):
            task_id += 1
            truth = rng.choice(["Positive", "Negative"])
            wrong = "Negative" if truth == "Positive" else "Positive"
            said = truth if rng.random() < 0.7 else wrong  # the label the model will predict
            if task_id % 10 == 0:
                said = None  # no label named in the text: the model predicts nothing
            text = f"a {said.lower() if said else 'plain'} text no. {task_id}"
            batch.append((task_id, text, truth, said))
        results = client.post(
            "/predict", json=text_predict([(i, text) for i, text, _, _ in batch])
        ).get_json()["results"]
        job = None
        for (i, text, truth, said), entry in zip(batch, results, strict=True):
            label = annotator.label(truth, entry["result"])
            # Whether the task was in the control group (its prediction hidden).
            control = in_control_group(setup["project"], i, 0.3)
            assert (chosen(entry["result"]) is None) == (control or said is None)
            done.append((control, said, label))
            event = annotation_webhook(task_id=i, annotation_id=i, text=text, label=label)
            response = client.post("/webhook", json=event)
            job = response.get_json().get("job") or job
        assert job is not None
        assert wait_job(client, job, timeout=60)["status"] == "succeeded"
    settings = app.extensions["prelabel"].settings
    return settings.model_dir, ProjectKey.parse(setup["project"]), done


def test_report_numbers_match_the_store(served_project):
    model_dir, key, done = served_project
    (report,) = report_from_store(model_dir)
    page = Tables(render([report]))
    slug = str(key).replace(".", "_")
    store, acceptance = ProjectStore(model_dir), AcceptanceTracker(model_dir / "prelabel.db")

    # Acceptance per version and group: the store's own SQL aggregates.
    stats = {(s.model_version, s.group): s for s in acceptance.stats(key)}
    rows = page.rows(f"acceptance-{slug}")
    assert {(r["version"], r["group"]) for r in rows} == set(stats)
    for r in rows:
        s = stats[(r["version"], r["group"])]
        assert int(r["annotations"]) == s.annotations
        assert float(r["mean agreement"]) == pytest.approx(s.mean_agreement, abs=5e-4)
    assert sum(s.annotations for s in stats.values()) == len(done) == 90

    # Bias gap per version: pre-annotated minus control, with the annotations behind it; and
    # over all versions, recomputed from what the test did.
    bias = page.rows(f"bias-{slug}")
    pooled = next(r for r in bias if r["version"] == "all versions")
    # Tasks the model suggested nothing for cannot show anchoring: left out of the pooled gap.
    pre = [float(said == label) for control, said, label in done if said and not control]
    control = [float(said == label) for control, said, label in done if said and control]
    assert float(pooled["gap"]) == pytest.approx(
        sum(pre) / len(pre) - sum(control) / len(control), abs=5e-4
    )
    assert (int(pooled["pre-annotated"]), int(pooled["control"])) == (len(pre), len(control))
    assert float(pooled["95% low"]) > 0.0  # the annotator accepts 60 % of suggestions
    for r in bias:
        if r is pooled:
            continue
        shown = stats.get((r["version"], "preannotated"))
        hidden = stats.get((r["version"], "control"))
        counts = (shown.annotations if shown else 0, hidden.annotations if hidden else 0)
        assert (int(r["pre-annotated"]), int(r["control"])) == counts
        if shown is None or hidden is None:
            assert r["gap"] == "—"  # no gap without both groups
            continue
        assert float(r["gap"]) == pytest.approx(
            shown.mean_agreement - hidden.mean_agreement, abs=5e-4
        )
        assert float(r["95% low"]) < float(r["gap"]) < float(r["95% high"])

    # Per predicted label, over all versions: recomputed from what the test did.
    expected = defaultdict(list)
    for control, said, label in done:
        if said is not None:
            expected[(said, "control" if control else "preannotated")].append(float(said == label))
    labels = {(r["label"], r["group"]): r for r in page.rows(f"labels-{slug}")}
    assert set(labels) == set(expected)
    for k, values in expected.items():
        assert int(labels[k]["annotations"]) == len(values)
        assert float(labels[k]["mean agreement"]) == pytest.approx(
            sum(values) / len(values), abs=5e-4
        )

    # Learning curve: every version with the annotated tasks and held-out score it was made with.
    versions = list(reversed(store.versions(key)))
    curve = page.rows(f"curve-{slug}")
    assert [(r["version"], r["status"]) for r in curve] == [(v.name, v.status) for v in versions]
    for r, v in zip(curve, versions, strict=True):
        assert int(r["annotated tasks"]) == v.metrics["train_tasks"] + v.metrics["holdout_tasks"]
        if "holdout_agreement" in v.metrics:
            assert float(r["held-out agreement"]) == pytest.approx(
                v.metrics["holdout_agreement"], abs=5e-4
            )

    # Training history: the store's jobs, oldest first, promoted when the job says so.
    jobs = [j for j in reversed(JobQueue(model_dir / "prelabel.db").list(key)) if j.kind == "train"]
    training = page.rows(f"training-{slug}")
    assert [r["job"] for r in training] == [j.id for j in jobs]
    for r, j in zip(training, jobs, strict=True):
        assert r["outcome"] == ("promoted" if j.result.get("promoted") else "rejected")
        assert r["version"] == j.result["version"]
        assert float(r["seconds"]) == pytest.approx(j.finished_at - j.started_at, abs=5e-4)

    # Scores: one per task predicted (the reference backend scores 0.6 by keyword, 1.0 by
    # memory; a task it predicts nothing for has no score).
    (scores,) = page.rows(f"scores-{slug}")
    assert int(scores["predictions with a score"]) == sum(1 for _, said, _ in done if said) == 81
    assert {scores["min"], scores["max"]} <= {"0.600", "1.000"}

    # Six figures, each an inline SVG: the file needs nothing beside it.
    assert len(page.images) == 6
    assert all(src.startswith("data:image/svg+xml;base64,") for src in page.images)


def test_a_store_from_before_labels_were_kept_still_reports(tmp_path):
    import sqlite3

    from prelabel._engine.acceptance import _SCHEMA
    from prelabel.database import SqliteDatabase

    SqliteDatabase(tmp_path / "prelabel.db").migrate("acceptance", _SCHEMA[:1])  # schema 1
    with sqlite3.connect(tmp_path / "prelabel.db") as db:
        db.execute("INSERT INTO served VALUES ('4.5', '1', 'm-1', 0, '[]', 1.0)")
        db.execute("INSERT INTO acceptance VALUES ('4.5', '9', '1', 'm-1', 'preannotated',"
                   " 0.5, 0, NULL, 2.0)")  # fmt: skip
    (report,) = report_from_store(tmp_path)
    assert [(a.version, a.annotations, a.mean_agreement) for a in report.acceptance] == [
        ("m-1", 1, 0.5)
    ]
    assert report.labels == []
    assert report.scores == []  # the old served row has no score
    assert any("kept no predicted labels" in note for note in report.notes)


def test_cli_writes_the_report_for_one_project(served_project, tmp_path):
    model_dir, key, _ = served_project
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["report", "--model-dir", str(model_dir), "--project", key.id, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {out} (1 project(s))" in result.output
    assert f"Project {key}" in out.read_text()


def test_cli_refuses_a_directory_without_a_store(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--model-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "No prelabel store" in str(result.exception)
    assert not (tmp_path / "prelabel.db").exists()  # nothing created by looking


def test_missing_matplotlib_names_the_extra(served_project, monkeypatch):
    model_dir, _, _ = served_project
    (report,) = report_from_store(model_dir)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    with pytest.raises(ConfigError, match=r"pip install 'prelabel\[report\]'"):
        render([report])


def _export(tmp_path: Path) -> Path:
    def region(label):
        return [
            {"from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": [label]}}
        ]  # fmt: skip

    def prediction(version, label, score, at):
        return {"model_version": version, "score": score, "created_at": at, "result": region(label)}

    tasks = [
        # v1 predicted before the annotation: accepted (1.0).
        {"id": 1, "predictions": [prediction("m-1", "Positive", 0.9, "2026-01-01T10:00:00Z")],
         "annotations": [{"id": 11, "result": region("Positive"), "created_at": "2026-01-01T11:00:00Z"}]},
        # v1 said Negative, the annotator chose Positive (0.0); a cancelled annotation is ignored.
        {"id": 2, "predictions": [prediction("m-1", "Negative", 0.55, "2026-01-01T10:00:00Z")],
         "annotations": [{"id": 12, "result": region("Positive"), "created_at": "2026-01-01T12:00:00Z"},
                         {"id": 13, "result": [], "was_cancelled": True, "created_at": "2026-01-01T12:30:00Z"}]},
        # v2 came after two annotations; its Negative was kept (1.0).
        {"id": 3, "predictions": [prediction("m-2", "Negative", 0.7, "2026-01-02T10:00:00Z")],
         "annotations": [{"id": 14, "result": region("Negative"), "created_at": "2026-01-02T11:00:00Z"}]},
        # Annotated before any prediction existed: not counted.
        {"id": 4, "predictions": [prediction("m-2", "Positive", 0.8, "2026-01-02T10:00:00Z")],
         "annotations": [{"id": 15, "result": region("Positive"), "created_at": "2026-01-01T09:00:00Z"}]},
        # Made from m-1's prediction (LS recorded it as the parent), though m-2's is newer:
        # judged against m-1's Negative (0.0).
        {"id": 5, "predictions": [{**prediction("m-1", "Negative", 0.6, "2026-01-01T10:00:00Z"), "id": 51},
                                  {**prediction("m-2", "Positive", 0.95, "2026-01-02T10:00:00Z"), "id": 52}],
         "annotations": [{"id": 16, "result": region("Positive"), "parent_prediction": 51,
                          "created_at": "2026-01-03T09:00:00Z"}]},
    ]  # fmt: skip
    path = tmp_path / "project-7.json"
    path.write_text(json.dumps(tasks))
    return path


def test_report_from_a_label_studio_export(tmp_path):
    report = report_from_export(_export(tmp_path))
    page = Tables(render([report]))
    slug = "project-7"
    acceptance = page.rows(f"acceptance-{slug}")
    assert [(r["version"], r["annotations"], r["mean agreement"]) for r in acceptance] == [
        ("m-1", "3", "0.333"),
        ("m-2", "1", "1.000"),
    ]
    curve = page.rows(f"curve-{slug}")
    # m-1 first predicted after one annotation (task 4's, at 09:00), m-2 after three (the
    # cancelled one does not count).
    assert [(r["version"], r["annotated tasks"]) for r in curve] == [("m-1", "1"), ("m-2", "3")]
    labels = {r["label"]: r for r in page.rows(f"labels-{slug}")}
    assert (labels["Positive"]["annotations"], labels["Positive"]["mean agreement"]) == (
        "1",
        "1.000",
    )
    assert (labels["Negative"]["annotations"], labels["Negative"]["mean agreement"]) == (
        "3",
        "0.333",
    )
    (scores,) = page.rows(f"scores-{slug}")
    assert (scores["predictions with a score"], scores["min"], scores["max"]) == (
        "6",
        "0.550",
        "0.950",
    )
    assert f"training-{slug}" not in page.tables and f"bias-{slug}" not in page.tables
    assert "1 annotations had no non-empty prediction before them" in render([report])


def test_export_that_is_not_a_task_list_is_refused(tmp_path):
    path = tmp_path / "min.json"
    path.write_text(json.dumps({"tasks": []}))
    with pytest.raises(ConfigError, match="not a Label Studio JSON export"):
        report_from_export(path)


def test_export_with_prediction_ids_only_says_how_to_get_one_with_content(tmp_path):
    # What Label Studio 1.23's Export button writes: "predictions": [<id>, ...].
    path = tmp_path / "button.json"
    path.write_text(json.dumps([{"id": 1, "predictions": [7], "annotations": []}]))
    with pytest.raises(ConfigError, match="by id only") as refused:
        report_from_export(path)
    assert '"only_id": false' in str(refused.value)
    result = CliRunner().invoke(
        cli, ["report", "--export", str(path), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "r.html").exists()
