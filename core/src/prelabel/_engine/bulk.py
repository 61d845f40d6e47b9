"""Bulk pre-annotation: many tasks in batches, beyond Label Studio's 100 s ``/predict`` timeout.

Tasks come from a live project or an LS JSON export (:mod:`prelabel._engine.bulk_sources`),
from the command line (:mod:`prelabel._engine.bulk_run`) or a job (:mod:`~prelabel._engine.bulk_job`);
each batch goes through the same :class:`~prelabel._engine.runner.PredictionRunner` as
``/predict`` (one prediction per task, scores, control group), and predictions are stored as
they are made — posted to LS, or appended to a journal next to the output file — so an
interrupted run resumes where it stopped without predicting or posting a task twice. A backend
chooses how batches are run (:attr:`prelabel.Backend.bulk`): several at once for I/O-bound
backends (an LLM API), larger batches one at a time for compute-bound ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Progress", "Sink", "StoredPrediction", "predict_in_batches"]

log = logging.getLogger(__name__)

#: LS JSON of one stored prediction: ``{"task", "result", "score", "model_version"}``.
StoredPrediction = dict[str, Any]
#: Stores predictions; returns how many were stored.
Sink = Callable[[list[StoredPrediction]], int]


@dataclass
class Progress:
    """How far a bulk run is (also what a ``predict`` job reports to ``/jobs``).

    Attributes:
        total: the tasks of the project or file (``None`` until known).
        done: tasks predicted in this run.
        skipped: tasks passed over (already predicted with the version, or labelled).
        stored: predictions stored (posted to LS or journalled).
        refused: predictions LS did not store (its validation dropped them).
        empty: predictions with an empty result.
    """

    total: int | None = None
    done: int = 0
    skipped: int = 0
    stored: int = 0
    refused: int = 0
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
            "refused": self.refused,
            "empty": self.empty,
            "tasks_per_s": round(self.rate, 2),
            "eta_s": None if eta is None else round(eta, 1),
        }


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


class _Buffer:
    """Predictions waiting to be stored: each store call costs LS a fixed overhead (it
    recounts every task of the project), so they go out in chunks, yet never wait long."""

    def __init__(self, sink: Sink, progress: Progress, size: int, max_age: float) -> None:
        self.sink, self.progress, self.size, self.max_age = sink, progress, size, max_age
        self.items: list[StoredPrediction] = []
        self.since = 0.0

    def add(self, predictions: list[StoredPrediction]) -> None:
        if not self.items:
            self.since = time.monotonic()
        self.items.extend(predictions)
        if len(self.items) >= self.size or time.monotonic() - self.since >= self.max_age:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        items, self.items = self.items, []
        stored = self.sink(items)
        self.progress.stored += stored
        if stored < len(items):
            self.progress.refused += len(items) - stored
            log.warning(
                "Label Studio stored %d of %d predictions: it dropped the others as invalid for "
                "the labeling config (its log names them: 'Prediction validation failed').",
                stored,
                len(items),
            )


def predict_in_batches(
    predict: Callable[[Sequence[Mapping[str, Any]]], list[Any]],
    tasks: Iterable[Sequence[Mapping[str, Any]]],
    sink: Sink,
    *,
    batch_size: int,
    concurrency: int = 1,
    store_every: int = 1,
    store_after_s: float = 10.0,
    progress: Progress | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Predict ``tasks`` (pages of LS tasks) batch by batch and store the predictions.

    Args:
        predict: LS ``results`` entries for a batch (``PredictionRunner.run`` with a context).
        tasks: the tasks to predict, in pages of any size.
        sink: stores predictions.
        batch_size: tasks per ``predict`` call.
        concurrency: batches in flight at once (I/O-bound backends).
        store_every: predictions gathered before ``sink`` is called.
        store_after_s: ... or once the oldest unstored prediction is this old.
        progress: counts to continue (a resumed run starts from its earlier counts).
        on_progress: called after each batch.
        stop: set it (e.g. on Ctrl-C) to stop after the batches in flight; what they
            predicted is stored before this returns.
    """
    progress = progress or Progress()
    stop = stop or threading.Event()
    buffer = _Buffer(sink, progress, max(1, store_every), store_after_s)

    def one(batch: list[Mapping[str, Any]]) -> tuple[int, list[StoredPrediction]]:
        entries = predict(batch)
        stored = [
            p for task, entry in zip(batch, entries, strict=True) for p in _stored(task, entry)
        ]
        return len(batch), stored

    def record(done: Future[tuple[int, list[StoredPrediction]]]) -> None:
        n, predictions = done.result()
        buffer.add(predictions)
        progress.empty += sum(not p["result"] for p in predictions)
        progress.done += n
        if on_progress is not None:
            on_progress(progress)

    width = max(1, concurrency)
    try:
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="bulk") as pool:
            in_flight: set[Future[tuple[int, list[StoredPrediction]]]] = set()
            for batch in _batches(tasks, batch_size):
                if stop.is_set():
                    break
                in_flight.add(pool.submit(one, batch))
                if len(in_flight) >= width:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record(future)
            for future in in_flight:
                record(future)
    finally:
        # Whatever was predicted is stored, also when a batch or the task listing failed.
        buffer.flush()
    return progress
