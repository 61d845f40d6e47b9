"""Bulk pre-annotation: many tasks in batches, beyond Label Studio's 100 s ``/predict`` timeout.

Tasks come from a live project (through the LS API, only those without a prediction of the
version being served) or from an LS JSON export; each batch goes through the same
:class:`~prelabel._engine.runner.PredictionRunner` as ``/predict`` (one prediction per task,
scores, control group), and its predictions are stored as soon as the batch is done — posted
to LS, or appended to a journal next to the output file — so an interrupted run resumes where
it stopped without predicting or posting a task twice. A backend chooses how batches are run
(:attr:`prelabel.Backend.bulk`): several at once for I/O-bound backends (an LLM API), larger
batches one at a time for compute-bound ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prelabel._engine.jobs import Job
from prelabel._engine.store import ProjectState
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError

__all__ = [
    "ExportFile",
    "Progress",
    "has_prediction",
    "live_predictions",
    "predict_in_batches",
    "run_predict_job",
]

log = logging.getLogger(__name__)

#: LS JSON of one stored prediction: ``{"task", "result", "score", "model_version"}``.
StoredPrediction = dict[str, Any]
#: Stores one batch's predictions; returns how many were stored.
Sink = Callable[[list[StoredPrediction]], int]


@dataclass
class Progress:
    """How far a bulk run is (also what a ``predict`` job reports to ``/jobs``)."""

    total: int | None = None
    done: int = 0
    skipped: int = 0
    stored: int = 0
    empty: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Tasks per second so far."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (``None`` without a total or a rate)."""
        if self.total is None or not self.rate:
            return None
        return max(0.0, (self.total - self.skipped - self.done) / self.rate)

    def as_dict(self) -> dict[str, Any]:
        eta = self.eta
        return {
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "stored": self.stored,
            "empty": self.empty,
            "tasks_per_s": round(self.rate, 2),
            "eta_s": None if eta is None else round(eta, 1),
        }


def has_prediction(task: Mapping[str, Any], version: str) -> bool:
    """Whether the task already has a prediction of ``version`` (LS's own dedup rule)."""
    predictions = task.get("predictions")
    return isinstance(predictions, list) and any(
        isinstance(p, Mapping) and p.get("model_version") == version for p in predictions
    )


def _stored(task: Mapping[str, Any], entry: Any) -> list[StoredPrediction]:
    entries = entry if isinstance(entry, list) else [entry]
    return [
        {
            "task": task.get("id"),
            "result": e["result"],
            "score": e.get("score"),
            "model_version": e["model_version"],
        }
        for e in entries
    ]


def _batches(
    tasks: Iterable[Sequence[Mapping[str, Any]]], size: int
) -> Iterator[list[Mapping[str, Any]]]:
    pending: list[Mapping[str, Any]] = []
    for page in tasks:
        pending.extend(page)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def predict_in_batches(
    predict: Callable[[Sequence[Mapping[str, Any]]], list[Any]],
    tasks: Iterable[Sequence[Mapping[str, Any]]],
    sink: Sink,
    *,
    batch_size: int,
    concurrency: int = 1,
    progress: Progress | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Predict ``tasks`` (pages of LS tasks) batch by batch and store each batch at once.

    Args:
        predict: LS ``results`` entries for a batch (``PredictionRunner.run`` with a context).
        tasks: the tasks to predict, in pages of any size.
        sink: stores one batch's predictions.
        batch_size: tasks per ``predict`` call.
        concurrency: batches in flight at once (I/O-bound backends).
        progress: counts to continue (a resumed run starts from its earlier counts).
        on_progress: called after each stored batch.
        stop: set it (e.g. on Ctrl-C) to stop after the batches in flight are stored.
    """
    progress = progress or Progress()
    stop = stop or threading.Event()

    def one(batch: list[Mapping[str, Any]]) -> tuple[int, list[StoredPrediction]]:
        entries = predict(batch)
        stored = [
            p for task, entry in zip(batch, entries, strict=True) for p in _stored(task, entry)
        ]
        return len(batch), stored

    def record(done: Future[tuple[int, list[StoredPrediction]]]) -> None:
        n, stored = done.result()
        progress.stored += sink(stored)
        progress.empty += sum(not p["result"] for p in stored)
        progress.done += n
        if on_progress is not None:
            on_progress(progress)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="bulk") as pool:
        in_flight: set[Future[tuple[int, list[StoredPrediction]]]] = set()
        for batch in _batches(tasks, batch_size):
            if stop.is_set():
                break
            in_flight.add(pool.submit(one, batch))
            if len(in_flight) >= max(1, concurrency):
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    record(future)
        for future in in_flight:
            record(future)
    return progress


# -- a live project ---------------------------------------------------------------------------


def live_predictions(
    client: LabelStudioClient,
    project_id: str,
    version: str,
    progress: Progress,
    *,
    unlabeled_only: bool,
) -> tuple[Iterator[list[dict[str, Any]]], Sink]:
    """Tasks of an LS project that lack a prediction of ``version``, and a sink that posts.

    ``progress`` learns the project's task count and counts the tasks passed over.
    """

    def wanted(task: Mapping[str, Any]) -> bool:
        labelled = unlabeled_only and (task.get("total_annotations") or task.get("is_labeled"))
        return not labelled and not has_prediction(task, version)

    def tasks() -> Iterator[list[dict[str, Any]]]:
        for page, total in ls_projects.iter_tasks(client, project_id):
            progress.total = total if total is not None else progress.total
            kept = [t for t in page if wanted(t)]
            progress.skipped += len(page) - len(kept)
            yield kept

    def post(predictions: list[StoredPrediction]) -> int:
        return ls_projects.import_predictions(client, project_id, predictions)

    return tasks(), post


# -- an export file ---------------------------------------------------------------------------


class ExportFile:
    """An LS JSON export in, an LS import file with predictions out, resumable.

    Finished tasks are appended to ``<out>.partial.jsonl`` as they complete; a run that finds
    that journal skips the tasks in it, and the import file is written (atomically) only once
    every task is done, then the journal is removed.
    """

    def __init__(self, source: Path, out: Path) -> None:
        try:
            tasks = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read {source} as a Label Studio JSON export: {exc}") from exc
        if not isinstance(tasks, list) or not all(
            isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks
        ):
            raise ConfigError(
                f"{source} is not a Label Studio JSON export: expected a list of tasks, each with"
                ' a "data" object (export the project as JSON, not JSON-MIN or CSV).'
            )
        self.tasks: list[dict[str, Any]] = [
            {**t, "id": t.get("id", i)} for i, t in enumerate(tasks, 1)
        ]
        self.out = out
        self.journal = out.with_name(out.name + ".partial.jsonl")
        self.done: dict[Any, list[StoredPrediction]] = {}
        if self.journal.exists():
            for line in self.journal.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done.setdefault(row["task"], []).append(row)
        self._lock = threading.Lock()

    def pending(self, version: str) -> list[dict[str, Any]]:
        """Tasks not yet in the journal and without a prediction of ``version``."""
        return [
            t for t in self.tasks if t["id"] not in self.done and not has_prediction(t, version)
        ]

    def append(self, predictions: list[StoredPrediction]) -> int:
        """Journal one batch (the sink of :func:`predict_in_batches`)."""
        with self._lock, self.journal.open("a", encoding="utf-8") as journal:
            for prediction in predictions:
                journal.write(json.dumps(prediction, ensure_ascii=False) + "\n")
                self.done.setdefault(prediction["task"], []).append(prediction)
            journal.flush()
        return len(predictions)

    def finish(self) -> int:
        """Write the import file: every task with its new predictions; returns the task count."""
        rows = []
        for task in self.tasks:
            new = [
                {k: v for k, v in p.items() if k != "task"} for p in self.done.get(task["id"], [])
            ]
            rows.append({**task, "predictions": [*(task.get("predictions") or []), *new]})
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.out)
        self.journal.unlink(missing_ok=True)
        return len(rows)


# -- the background job -----------------------------------------------------------------------


def run_predict_job(runtime: Any, job: Job) -> dict[str, Any]:
    """A ``predict`` job: pre-annotate the project's tasks in LS with the served version.

    Payload: ``unlabeled_only`` (default true), ``select`` (point the project's prediction
    selector at the version when done, so scores sort in LS).
    """
    state: ProjectState = runtime.store.project(job.project)
    if not state.label_config:
        raise ConfigError(
            f"Project {job.project} has no labeling config yet: connect this backend to it in "
            "Label Studio (which calls /setup) first."
        )
    client = runtime.client_for(state)
    if client is None:
        raise ConfigError(
            "Bulk prediction posts to Label Studio's API: set LABEL_STUDIO_URL and "
            "LABEL_STUDIO_API_KEY (a personal access token) for this backend."
        )
    config = LabelConfig.cached(state.label_config)
    ctx = runtime.context(state, label_config=config)
    # A backend that cannot predict says why now, instead of posting empty predictions.
    runtime.check_project(job.project, config, ctx.settings, source="predict")
    progress = Progress()
    tasks, post = live_predictions(
        client,
        job.project.id,
        ctx.model_version,
        progress,
        unlabeled_only=bool(job.payload.get("unlabeled_only", True)),
    )
    hints = runtime.backend.bulk
    predict_in_batches(
        lambda batch: runtime.runner.run(batch, ctx),
        tasks,
        post,
        batch_size=hints.batch_size,
        concurrency=hints.concurrency,
        progress=progress,
        on_progress=lambda p: runtime.queue.report(job.id, p.as_dict()),
    )
    result: dict[str, Any] = {"version": ctx.model_version, **progress.as_dict()}
    if job.payload.get("select"):
        result["selected"] = ls_projects.select_version(client, job.project.id, ctx.model_version)
    return result
