"""Bulk pre-annotation: a live project through LS's API, and LS export files, resumable."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fake_ls_project import TOKEN, FakeProjectLS

from prelabel._engine.bulk import Progress, predict_in_batches
from prelabel._engine.bulk_run import ProgressLine, predict_export, predict_project
from prelabel._engine.bulk_sources import ExportFile, LiveProject
from prelabel._engine.runtime import build_runtime
from prelabel._ls.client import LabelStudioClient
from prelabel.errors import ConfigError
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings
from prelabel.testing.reference import REFERENCE_CONFIG, ReferenceBackend

VERSION = "reference-0"


def _task(i: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": i, "data": {"text": text}, "total_annotations": 0, **extra}


class Versioned(ReferenceBackend):
    version = VERSION  # a fixed base version name for the assertions


@pytest.fixture
def runtime(tmp_path):
    settings = CoreSettings(model_dir=tmp_path / "models", job_runner="external")
    return build_runtime(Versioned(), settings)


def _client(url: str) -> LabelStudioClient:
    return LabelStudioClient(url, TOKEN)


def test_a_live_run_predicts_only_unlabeled_tasks_without_the_version(runtime, loopback):
    tasks = [_task(i, "positive news" if i % 2 else "negative news") for i in range(1, 251)]
    tasks[0]["predictions"] = [{"model_version": VERSION, "result": []}]  # already predicted
    tasks[1]["total_annotations"] = 1  # labelled: left alone
    tasks[2]["predictions"] = [{"model_version": "older", "result": []}]  # other version: predict
    ls = FakeProjectLS(tasks, label_config=REFERENCE_CONFIG)
    progress, stopped = predict_project(
        runtime,
        _client(loopback(ls)),
        7,
        unlabeled_only=True,
        batch_size=40,
        concurrency=2,
        show=ProgressLine(interval=0),
    )
    assert not stopped
    ours = [p for p in ls.predictions() if p["model_version"] == VERSION]
    predicted = sorted(p["task"] for p in ours)
    # task 1 had this version already; every pending task got exactly one
    assert predicted == [1, *range(3, 251)]
    assert (progress.done, progress.skipped, progress.total) == (248, 2, 250)
    by_task = {p["task"]: p for p in ours}
    assert by_task[3]["result"][0]["value"]["choices"] == ["Positive"]
    assert by_task[4]["result"][0]["value"]["choices"] == ["Negative"]
    assert by_task[3]["score"] == pytest.approx(0.6)
    pages = [path for method, path in ls.requests if path == "/api/tasks"]
    assert len(pages) == 1  # 250 per page, no page past the end needed
    # Posted in chunks of at least 100 (LS recounts the project on every call), the rest at the end.
    assert ls.imported == [120, 120, 8]


def test_an_interrupted_live_run_resumes_without_duplicates_or_gaps(runtime, loopback):
    ls = FakeProjectLS([_task(i, "positive") for i in range(1, 101)], label_config=REFERENCE_CONFIG)
    client = _client(loopback(ls))
    stop = threading.Event()
    progress = Progress()
    source = LiveProject(client, "7", VERSION, progress, unlabeled_only=True)

    def predict(batch):
        stop.set()  # Ctrl-C during the first batch: it is still stored, no other starts
        return runtime.runner.run(batch, _ctx(runtime))

    predict_in_batches(
        predict, source.tasks(), source.post, batch_size=30, store_every=100, progress=progress,
        stop=stop,
    )  # fmt: skip
    assert sorted(p["task"] for p in ls.predictions()) == list(range(1, 31))
    progress, stopped = predict_project(
        runtime, client, 7, unlabeled_only=True, batch_size=30, concurrency=1,
        show=ProgressLine(interval=0),
    )  # fmt: skip
    assert not stopped and progress.skipped == 30 and progress.done == 70
    assert sorted(p["task"] for p in ls.predictions()) == list(range(1, 101))


def test_a_failed_post_stops_the_run_and_loses_nothing_already_stored(
    runtime, loopback, monkeypatch
):
    monkeypatch.setattr(LiveProject, "store_every", 20)
    ls = FakeProjectLS([_task(i, "positive") for i in range(1, 61)], label_config=REFERENCE_CONFIG)
    client = _client(loopback(ls))
    ls.fail_imports = 0
    original = ls.dispatch
    calls = {"n": 0}

    def flaky(request):
        if request.path.endswith("/import/predictions"):
            calls["n"] += 1
            if calls["n"] == 2:
                ls.fail_imports = 1
        return original(request)

    ls.dispatch = flaky  # type: ignore[method-assign]
    with pytest.raises(Exception, match="HTTP 500"):
        predict_project(runtime, client, 7, unlabeled_only=True, batch_size=20, concurrency=1,
                        show=ProgressLine(interval=0))  # fmt: skip
    assert sorted(p["task"] for p in ls.predictions()) == list(range(1, 21))
    predict_project(runtime, client, 7, unlabeled_only=True, batch_size=20, concurrency=1,
                    show=ProgressLine(interval=0))  # fmt: skip
    assert sorted(p["task"] for p in ls.predictions()) == list(range(1, 61))


def _ctx(runtime):
    from prelabel._engine.store import ProjectState
    from prelabel.config import LabelConfig

    return runtime.context(
        ProjectState(ProjectKey("7", 1795806764)), label_config=LabelConfig.cached(REFERENCE_CONFIG)
    )


def _export(tmp_path: Path, n: int) -> Path:
    rows = [
        {"id": 100 + i, "data": {"text": "positive" if i % 2 else "negative"}, "annotations": []}
        for i in range(n)
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(rows))
    return path


def test_an_export_becomes_an_import_file_with_one_prediction_per_task(runtime, tmp_path):
    source, out = _export(tmp_path, 9), tmp_path / "import.json"
    progress, stopped = predict_export(
        runtime, source, out, label_config=REFERENCE_CONFIG, project=ProjectKey("0"),
        batch_size=4, concurrency=1, show=ProgressLine(interval=0),
    )  # fmt: skip
    assert not stopped and progress.done == 9
    rows = json.loads(out.read_text())
    assert [r["data"] for r in rows] == [r["data"] for r in json.loads(source.read_text())]
    assert all(len(r["predictions"]) == 1 for r in rows)
    assert rows[1]["predictions"][0]["result"][0]["value"]["choices"] == ["Positive"]
    assert rows[0]["predictions"][0]["model_version"] == VERSION
    assert "task" not in rows[0]["predictions"][0]  # LS's import format
    assert not out.with_name("import.json.partial.jsonl").exists()


def test_an_interrupted_export_run_resumes_from_its_journal(runtime, tmp_path):
    source, out = _export(tmp_path, 10), tmp_path / "import.json"
    export = ExportFile(source, out)
    stop = threading.Event()

    def predict(batch):
        stop.set()
        return runtime.runner.run(batch, _ctx(runtime))

    predict_in_batches(predict, [export.pending(VERSION)], export.append, batch_size=3, stop=stop)
    with export.journal.open("a") as journal:
        journal.write('{"task": 103, "res')  # a line cut short when the process was killed
    assert not out.exists() and len(ExportFile(source, out).done) == 3
    progress, stopped = predict_export(
        runtime, source, out, label_config=REFERENCE_CONFIG, project=ProjectKey("0"),
        batch_size=3, concurrency=1, show=ProgressLine(interval=0),
    )  # fmt: skip
    assert not stopped and (progress.skipped, progress.done) == (3, 7)
    rows = json.loads(out.read_text())
    assert [len(r["predictions"]) for r in rows] == [1] * 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Cannot read"),
        ('{"data": {}}', "expected a list of tasks"),
        ('[{"text": "a flat JSON-MIN row"}]', 'each with a "data" object'),
    ],
)
def test_a_file_that_is_not_an_ls_export_is_refused_clearly(tmp_path, content, message):
    source = tmp_path / "export.json"
    source.write_text(content)
    with pytest.raises(ConfigError, match=message):
        ExportFile(source, tmp_path / "out.json")


def test_progress_reports_rate_and_eta():
    progress = Progress(total=100, skipped=20)
    progress.started -= 10
    progress.done = 40
    assert progress.rate == pytest.approx(4.0, rel=0.05)
    assert progress.eta == pytest.approx(10.0, rel=0.05)  # 40 left at 4 tasks/s
    assert Progress().eta is None


def _answers(batch, *, result=None):
    """LS ``results`` entries as the runner makes them: one per task."""
    return [
        {"result": result if result is not None else [], "score": None, "model_version": VERSION}
        for _ in batch
    ]


def test_what_was_predicted_is_stored_before_a_failing_batch_stops_the_run():
    stored: list[dict[str, Any]] = []
    calls = {"n": 0}

    def predict(batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the model broke")
        return _answers(batch)

    def sink(predictions):
        stored.extend(predictions)
        return len(predictions)

    pages = [[_task(i, "x") for i in range(1, 51)]]
    with pytest.raises(RuntimeError, match="the model broke"):
        predict_in_batches(predict, pages, sink, batch_size=10, store_every=100)
    # Two batches were waiting for a full chunk: they are stored, not lost.
    assert [p["task"] for p in stored] == list(range(1, 21))


def test_predictions_label_studio_drops_are_counted_and_logged(runtime, loopback, caplog):
    ls = FakeProjectLS([_task(i, "x") for i in range(1, 11)], label_config=REFERENCE_CONFIG)
    source = LiveProject(_client(loopback(ls)), "7", VERSION, Progress(), unlabeled_only=True)
    invalid = [{"from_name": "nope", "to_name": "text", "type": "choices", "value": {}}]

    def predict(batch):
        return [*_answers(batch[:-2]), *_answers(batch[-2:], result=invalid)]

    progress = predict_in_batches(predict, source.tasks(), source.post, batch_size=5)
    assert (progress.done, progress.stored, progress.refused) == (10, 6, 4)
    assert "Label Studio stored 3 of 5 predictions" in caplog.text


def test_a_failing_task_listing_stops_the_run_after_storing_the_pages_before(runtime, loopback):
    ls = FakeProjectLS([_task(i, "x") for i in range(1, 301)], label_config=REFERENCE_CONFIG)
    ls.fail_page = 2
    source = LiveProject(_client(loopback(ls)), "7", VERSION, Progress(), unlabeled_only=True)
    with pytest.raises(Exception, match="HTTP 500"):
        predict_in_batches(_answers, source.tasks(), source.post, batch_size=50, store_every=100)
    assert sorted(p["task"] for p in ls.predictions()) == list(range(1, 251))


def test_an_export_leaves_labelled_tasks_alone_and_drops_prediction_ids(runtime, tmp_path):
    rows = [
        {"id": 1, "data": {"text": "positive"}, "annotations": [{"result": [], "id": 9}]},
        {"id": 2, "data": {"text": "negative"}, "annotations": [{"was_cancelled": True}]},
        {"id": 3, "data": {"text": "positive"}, "predictions": [5]},  # a quick export's ids
    ]
    source, out = tmp_path / "export.json", tmp_path / "import.json"
    source.write_text(json.dumps(rows))
    progress, _ = predict_export(
        runtime, source, out, label_config=REFERENCE_CONFIG, project=ProjectKey("0"),
        batch_size=4, concurrency=1, show=ProgressLine(interval=0),
    )  # fmt: skip
    assert (progress.done, progress.skipped) == (2, 1)  # a skipped annotation does not count
    written = {r["id"]: r for r in json.loads(out.read_text())}
    assert written[1]["predictions"] == [] and written[1]["annotations"] == rows[0]["annotations"]
    assert [len(written[i]["predictions"]) for i in (2, 3)] == [1, 1]
    assert all(isinstance(p, dict) for p in written[3]["predictions"])


def test_batches_run_concurrently_as_the_backend_asks():
    def meeting(parties: int, timeout: float):
        # ``parties`` batches must be in flight at once for the barrier to open.
        barrier = threading.Barrier(parties, timeout=timeout)

        def predict(batch):
            barrier.wait()
            return _answers(batch)

        return predict

    pages = [[_task(i, "x") for i in range(1, 33)]]
    progress = predict_in_batches(
        meeting(4, timeout=30), pages, lambda p: len(p), batch_size=4, concurrency=4
    )
    assert (progress.done, progress.stored) == (32, 32)
    with pytest.raises(threading.BrokenBarrierError):  # one at a time: nobody to meet
        predict_in_batches(
            meeting(2, timeout=0.5), pages, lambda p: len(p), batch_size=4, concurrency=1
        )
