"""Acceptance metrics: how the annotations people submit compare with what the model said.

Every non-interactive prediction is recorded, including the hidden one of a control-group
task. When an annotation arrives, its agreement (:mod:`prelabel.metrics.agreement`) with the recorded
prediction is added to per-(project, model version, group) aggregates. Comparing the
``preannotated`` group with the ``control`` group shows how much annotators simply accept
suggestions: with no anchoring bias both agree with the model equally often.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel._engine.engines import open_database
from prelabel._engine.runner import ServedPrediction
from prelabel.annotations import result_labels
from prelabel.database import Database
from prelabel.metrics.agreement import agreement
from prelabel.project import ProjectKey

__all__ = ["AcceptanceRecord", "AcceptanceStats", "AcceptanceTracker", "ServedScore"]

log = logging.getLogger(__name__)

_SCHEMA = [
    [
        "CREATE TABLE served (project TEXT NOT NULL, task_id TEXT NOT NULL,"
        " model_version TEXT NOT NULL, control INTEGER NOT NULL, result TEXT NOT NULL,"
        " served_at REAL NOT NULL, PRIMARY KEY (project, task_id))",
        "CREATE TABLE acceptance (project TEXT NOT NULL, annotation_id TEXT NOT NULL,"
        " task_id TEXT NOT NULL, model_version TEXT NOT NULL, grp TEXT NOT NULL,"
        " agreement REAL NOT NULL, exact INTEGER NOT NULL, lead_time REAL,"
        " recorded_at REAL NOT NULL, PRIMARY KEY (project, annotation_id))",
    ],
    # For `prelabel report`: the task score served; the labels and the number of regions the
    # model predicted (a prediction without regions suggested nothing to accept).
    [
        "ALTER TABLE served ADD COLUMN score REAL",
        "ALTER TABLE acceptance ADD COLUMN labels TEXT",
        "ALTER TABLE acceptance ADD COLUMN regions INTEGER",
    ],
]


@dataclass(frozen=True)
class AcceptanceStats:
    """Aggregates for one (project, model version, group)."""

    project: str
    model_version: str
    group: str
    annotations: int
    mean_agreement: float
    exact_share: float
    mean_lead_time: float | None


@dataclass(frozen=True)
class AcceptanceRecord:
    """One annotation scored against the prediction served for its task.

    ``labels`` are the labels the model predicted (shown or, in the control group, hidden) and
    ``regions`` how many regions it predicted; both ``None`` for records written before they
    were kept.
    """

    model_version: str
    group: str
    agreement: float
    labels: list[str] | None
    regions: int | None
    recorded_at: float


@dataclass(frozen=True)
class ServedScore:
    """The score of the latest prediction served for a task (``None``: the model gave none)."""

    model_version: str
    control: bool
    score: float | None


class AcceptanceTracker:
    """Records served predictions and scores annotations against them (multi-process safe)."""

    def __init__(self, database: Database | Path | str) -> None:
        self._db = open_database(database)
        self._db.migrate("acceptance", _SCHEMA)
        # Served predictions are written by a background thread: /predict must not wait on disk.
        self._pending: queue.Queue[tuple[ProjectKey, list[ServedPrediction]]] = queue.Queue(
            maxsize=1000
        )
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

    def record_served_later(self, project: ProjectKey, served: list[ServedPrediction]) -> None:
        """Queue :meth:`record_served` for the background writer (drops the batch if it is full)."""
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._drain, name="prelabel-acceptance", daemon=True
                )
                self._writer.start()
        try:
            self._pending.put_nowait((project, served))
        except queue.Full:
            log.warning(
                "Acceptance writer is behind; %d served predictions not recorded.", len(served)
            )

    def flush(self) -> None:
        """Wait until every queued batch is written."""
        self._pending.join()

    def _drain(self) -> None:
        while True:
            project, served = self._pending.get()
            try:
                self.record_served(project, served)
            except Exception:
                # Metrics must never cost a prediction.
                log.exception("Could not record served predictions for project %s.", project)
            finally:
                self._pending.task_done()

    def record_served(self, project: ProjectKey, served: Iterable[ServedPrediction]) -> None:
        now = time.time()
        rows = [
            (
                str(project),
                str(s.task_id),
                s.model_version,
                int(s.control),
                json.dumps(s.result),
                now,
                s.score,
            )
            for s in served
            if s.task_id is not None
        ]
        if rows:
            with self._db.write(lock=None) as db:
                db.executemany(
                    "INSERT INTO served (project, task_id, model_version, control, result,"
                    " served_at, score) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (project, task_id) DO UPDATE SET"
                    " model_version = excluded.model_version, control = excluded.control,"
                    " result = excluded.result, served_at = excluded.served_at,"
                    " score = excluded.score",
                    rows,
                )

    def record_annotation(
        self, project: ProjectKey, task: Mapping[str, Any], annotation: Mapping[str, Any]
    ) -> float | None:
        """Score ``annotation`` against the prediction served for its task; ``None`` if none was."""
        self.flush()
        task_id = annotation.get("task", task.get("id"))
        if annotation.get("was_cancelled") or task_id is None or annotation.get("id") is None:
            return None
        # No lock: one upsert per annotation id, and a late write of the same one is as good.
        with self._db.write(lock=None) as db:
            row = db.execute(
                "SELECT model_version, control, result FROM served WHERE project = ? AND task_id = ?",
                (str(project), str(task_id)),
            ).fetchone()
            if row is None:
                return None
            version, control, result = row
            predicted = json.loads(result)
            score = agreement(predicted, annotation.get("result") or [])
            lead = annotation.get("lead_time")
            db.execute(
                "INSERT INTO acceptance (project, annotation_id, task_id, model_version, grp,"
                " agreement, exact, lead_time, recorded_at, labels, regions)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, annotation_id)"
                " DO UPDATE SET task_id = excluded.task_id,"
                " model_version = excluded.model_version, grp = excluded.grp,"
                " agreement = excluded.agreement, exact = excluded.exact,"
                " lead_time = excluded.lead_time, recorded_at = excluded.recorded_at,"
                " labels = excluded.labels, regions = excluded.regions",
                (
                    str(project),
                    str(annotation["id"]),
                    str(task_id),
                    version,
                    "control" if control else "preannotated",
                    score,
                    int(score >= 0.999),
                    float(lead) if isinstance(lead, int | float) else None,
                    time.time(),
                    json.dumps(result_labels(predicted)),
                    len(predicted),
                ),
            )
        return score

    def stats(self, project: ProjectKey | None = None) -> list[AcceptanceStats]:
        """Aggregates per project, model version and group."""
        query = (
            "SELECT project, model_version, grp, COUNT(*), AVG(agreement), AVG(exact), AVG(lead_time) "
            "FROM acceptance {} GROUP BY project, model_version, grp ORDER BY project, model_version, grp"
        )
        args: tuple[str, ...] = ()
        where = ""
        if project is not None:
            where, args = "WHERE project = ?", (str(project),)
        with self._db.read() as db:
            rows = db.execute(query.format(where), args).fetchall()
        return [AcceptanceStats(*tuple(r)) for r in rows]

    def records(self, project: ProjectKey) -> list[AcceptanceRecord]:
        """Every scored annotation of ``project``, oldest first."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT model_version, grp, agreement, labels, regions, recorded_at"
                " FROM acceptance WHERE project = ? ORDER BY recorded_at",
                (str(project),),
            ).fetchall()
        return [
            AcceptanceRecord(
                r[0], r[1], r[2], None if r[3] is None else json.loads(r[3]), r[4], r[5]
            )
            for r in rows
        ]

    def served_scores(self, project: ProjectKey) -> list[ServedScore]:
        """The score of the latest prediction served for each task of ``project``."""
        self.flush()
        with self._db.read() as db:
            rows = db.execute(
                "SELECT model_version, control, score FROM served WHERE project = ?"
                " ORDER BY served_at",
                (str(project),),
            ).fetchall()
        return [ServedScore(r[0], bool(r[1]), r[2]) for r in rows]

    def projects(self) -> list[ProjectKey]:
        """Projects with served predictions."""
        with self._db.read() as db:
            rows = db.execute("SELECT DISTINCT project FROM served").fetchall()
        return [ProjectKey.parse(r[0]) for r in rows]
