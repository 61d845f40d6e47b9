"""A durable job queue in the store's SQLite file.

``/webhook`` only enqueues (one short write) and returns; a :class:`JobRunner` (a thread of the
server, or ``prelabel worker``) claims and runs the jobs. Across threads and processes:

* one job per project runs at a time: :meth:`JobQueue.claim` skips projects with a running
  job, and a partial unique index makes the database refuse a second running row;
* bursts coalesce: while a job is queued, further requests of its kind for its project merge
  into it; a request that arrives while a job runs queues one new job, because the running
  one may already have read its training data;
* a worker that dies stops heartbeating; after ``stale_after`` seconds the next claim puts
  its job back in the queue (or fails it after ``max_attempts`` tries, so a job that kills
  its worker, e.g. by running out of memory, does not loop forever).

:class:`JobRunner` is defined in :mod:`prelabel._engine.jobrunner` and exported from here.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from prelabel._engine.db import Database
from prelabel.errors import NotFound
from prelabel.project import ProjectKey

__all__ = ["Job", "JobQueue", "JobStatus"]

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
_FINISHED = "('succeeded', 'failed', 'cancelled')"

_SCHEMA = (
    (
        # reasons: JSON [[event, count], ...] in arrival order, rendered as Job.reason.
        "CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " project TEXT NOT NULL, project_id TEXT NOT NULL, generation INTEGER,"
        " kind TEXT NOT NULL, status TEXT NOT NULL, reasons TEXT NOT NULL,"
        " payload TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL,"
        " finished_at REAL, heartbeat_at REAL, worker TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '{}',"
        " error TEXT, coalesced INTEGER NOT NULL DEFAULT 1)",
        "CREATE UNIQUE INDEX IF NOT EXISTS jobs_running ON jobs (project) WHERE status = 'running'",
        "CREATE UNIQUE INDEX IF NOT EXISTS jobs_queued ON jobs (project, kind)"
        " WHERE status = 'queued'",
        "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)",
        "CREATE INDEX IF NOT EXISTS jobs_project ON jobs (project, seq)",
    ),
    # progress: JSON a running job reports about itself (e.g. a bulk prediction's counts).
    ("ALTER TABLE jobs ADD COLUMN progress TEXT NOT NULL DEFAULT '{}'",),
)


@dataclass(frozen=True)
class Job:
    """One unit of background work, as stored.

    Attributes:
        id: ``f"{kind}-{project.slug}-{seq:04d}"``, unique in the database.
        reason: the triggering events with counts, e.g. ``"ANNOTATION_CREATED x3, START_TRAINING"``.
        payload: options merged from every request (booleans OR-ed), e.g. ``{"pull": True}``.
        result: what the handler returned, e.g. ``{"version": "textcls-3", "promoted": True}``.
        progress: what the running job last reported (:meth:`JobQueue.report`), e.g. counts.
        error: ``"ExcType: message"`` of a failed job.
        coalesced: how many requests were merged into this job (1 if none).
        worker: the worker that runs or ran it.
        attempts: how many times a worker claimed it (more than 1 after a worker died).
    """

    id: str
    project: ProjectKey
    kind: str
    status: JobStatus
    reason: str
    payload: Mapping[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    result: Mapping[str, Any] = field(default_factory=dict)
    progress: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    coalesced: int = 1
    worker: str | None = None
    attempts: int = 0


def _render(reasons: list[list[Any]]) -> str:
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in reasons)


def _add_reason(reasons: list[list[Any]], reason: str, n: int = 1) -> str:
    for entry in reasons:
        if entry[0] == reason:
            entry[1] += n
            break
    else:
        reasons.append([reason, n])
    return json.dumps(reasons)


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    merged = dict(old)
    for key, value in new.items():
        prior = merged.get(key)
        # A flag any request asked for stays asked for (e.g. pull=True from START_TRAINING).
        both_bool = isinstance(prior, bool) and isinstance(value, bool)
        merged[key] = (prior or value) if both_bool else value
    return json.dumps(merged, default=str)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        project=ProjectKey(row["project_id"], row["generation"]),
        kind=row["kind"],
        status=row["status"],
        reason=_render(json.loads(row["reasons"])),
        payload=json.loads(row["payload"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        result=json.loads(row["result"]),
        progress=json.loads(row["progress"]),
        error=row["error"],
        coalesced=row["coalesced"],
        worker=row["worker"],
        attempts=row["attempts"],
    )


class JobQueue:
    """Jobs in the SQLite file at ``db_path`` (usually ``ProjectStore.db_path``)."""

    def __init__(
        self,
        db_path: Path,
        *,
        stale_after: float = 600.0,
        max_attempts: int = 3,
        keep_finished: int = 1000,
    ) -> None:
        """Open the queue, creating its table if needed.

        Args:
            db_path: the SQLite file.
            stale_after: seconds without heartbeat after which a running job's worker is
                presumed dead.
            max_attempts: claims after which a job whose workers keep dying is failed.
            keep_finished: finished jobs kept for status queries; older ones are deleted.
        """
        if stale_after <= 0 or max_attempts < 1 or keep_finished < 1:
            raise ValueError(
                "JobQueue needs stale_after > 0, max_attempts >= 1 and keep_finished >= 1, got"
                f" {stale_after}, {max_attempts}, {keep_finished}"
            )
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.keep_finished = keep_finished
        self._db = Database(db_path)
        self._db.migrate("jobs", _SCHEMA)
        self._listeners: builtins.list[Callable[[], None]] = []

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each enqueue in this process (runners wake up on it)."""
        self._listeners.append(callback)

    def enqueue(
        self,
        project: ProjectKey,
        kind: str = "train",
        *,
        reason: str,
        payload: Mapping[str, Any] | None = None,
    ) -> Job:
        """Queue a job, or merge into the project's queued job of that kind (see module doc)."""
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT seq, reasons, payload FROM jobs"
                " WHERE project = ? AND kind = ? AND status = 'queued'",
                (str(project), kind),
            ).fetchone()
            if row is not None:
                seq = row["seq"]
                conn.execute(
                    "UPDATE jobs SET reasons = ?, payload = ?, coalesced = coalesced + 1"
                    " WHERE seq = ?",
                    (
                        _add_reason(json.loads(row["reasons"]), reason),
                        _merge(json.loads(row["payload"]), payload or {}),
                        seq,
                    ),
                )
            else:
                seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
                conn.execute(
                    "INSERT INTO jobs (seq, id, project, project_id, generation, kind, status,"
                    " reasons, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        seq,
                        f"{kind}-{project.slug}-{seq:04d}",
                        str(project),
                        project.id,
                        project.generation,
                        kind,
                        _add_reason([], reason),
                        _merge({}, payload or {}),
                        time.time(),
                    ),
                )
            job = self._row(conn, "seq = ?", seq)
        for callback in self._listeners:
            callback()
        return job

    def claim(self, worker_id: str) -> Job | None:
        """Mark the oldest queued job of a project with no running job as ours, and return it.

        Requeues jobs of dead workers first. ``None`` when nothing can run now.
        """
        now = time.time()
        with self._db.write() as conn:
            self._requeue_stale(conn, now)
            row = conn.execute(
                "SELECT seq FROM jobs j WHERE status = 'queued' AND NOT EXISTS (SELECT 1"
                " FROM jobs r WHERE r.project = j.project AND r.status = 'running')"
                " ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?,"
                " worker = ?, attempts = attempts + 1 WHERE seq = ?",
                (now, now, worker_id, row["seq"]),
            )
            return self._row(conn, "seq = ?", row["seq"])

    def heartbeat(self, job_id: str, *, worker_id: str | None = None) -> bool:
        """Record that the job's worker is alive; ``False`` if the job is no longer running
        (or, given ``worker_id``, no longer run by that worker)."""
        cursor = self._db.connect().execute(
            "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'"
            " AND (? IS NULL OR worker = ?)",
            (time.time(), job_id, worker_id, worker_id),
        )
        return cursor.rowcount > 0

    def report(self, job_id: str, progress: Mapping[str, Any]) -> None:
        """Record a running job's progress (shown by ``/jobs``); a no-op once it finished."""
        self._db.connect().execute(
            "UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running'",
            (json.dumps(dict(progress), default=str), job_id),
        )

    def finish(
        self,
        job_id: str,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        worker_id: str | None = None,
    ) -> Job:
        """Mark a running job ``failed`` (``error`` given) or ``succeeded``; returns it.

        A job that is not running (or, given ``worker_id``, that another worker took over
        after this one was presumed dead) is returned unchanged, with a warning logged.

        Raises:
            NotFound: no job has that id.
        """
        with self._db.write() as conn:
            job = self._row(conn, "id = ?", job_id)
            if job.status != "running" or (worker_id is not None and job.worker != worker_id):
                log.warning(
                    "Job %s: not finishing it for %s, it is %s (worker %s)",
                    job_id,
                    worker_id,
                    job.status,
                    job.worker,
                )
                return job
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ? WHERE id = ?",
                (
                    "failed" if error is not None else "succeeded",
                    time.time(),
                    json.dumps(dict(result or {}), default=str),
                    error,
                    job_id,
                ),
            )
            conn.execute(
                f"DELETE FROM jobs WHERE status IN {_FINISHED} AND seq <= (SELECT seq FROM jobs"
                f" WHERE status IN {_FINISHED} ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (self.keep_finished,),
            )
            return self._row(conn, "id = ?", job_id)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job; a job already running or finished is returned unchanged.

        Raises:
            NotFound: no job has that id.
        """
        with self._db.write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?"
                " WHERE id = ? AND status = 'queued'",
                (time.time(), job_id),
            )
            return self._row(conn, "id = ?", job_id)

    def get(self, job_id: str) -> Job:
        """The job with that id.

        Raises:
            NotFound: no job has that id (never existed, or pruned as old).
        """
        return self._row(self._db.connect(), "id = ?", job_id)

    def list(self, project: ProjectKey | None = None, *, limit: int = 50) -> builtins.list[Job]:
        """The newest ``limit`` jobs, of one project or of all, newest first."""
        if project is None:
            rows = self._db.connect().execute(
                "SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)
            )
        elif project.generation is None:
            # A bare id ("4") means every generation of that project id.
            rows = self._db.connect().execute(
                "SELECT * FROM jobs WHERE project_id = ? ORDER BY seq DESC LIMIT ?",
                (project.id, limit),
            )
        else:
            rows = self._db.connect().execute(
                "SELECT * FROM jobs WHERE project = ? ORDER BY seq DESC LIMIT ?",
                (str(project), limit),
            )
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status (every status present, for ``/metrics``)."""
        counts = dict.fromkeys(get_args(JobStatus), 0)
        for status, n in self._db.connect().execute(
            "SELECT status, COUNT(*) FROM jobs GROUP BY status"
        ):
            counts[status] = n
        return counts

    def _row(self, conn: sqlite3.Connection, where: str, value: Any) -> Job:
        row = conn.execute(f"SELECT * FROM jobs WHERE {where}", (value,)).fetchone()
        if row is None:
            raise NotFound(
                f"No job {value!r}: the id is unknown, or the job finished long ago and was"
                f" deleted (the newest {self.keep_finished} finished jobs are kept)."
            )
        return _job(row)

    def requeue_lost(self, worker_ids: Iterable[str], why: str) -> int:
        """Hand the running jobs of workers known to be gone back to the queue now.

        Used when a worker process is seen dead (no need to wait ``stale_after``); the same
        rules as for a stale heartbeat apply. Returns how many jobs were affected.
        """
        ids = builtins.list(worker_ids)
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        with self._db.write() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status = 'running' AND worker IN ({marks})", ids
            ).fetchall()
            self._requeue(conn, rows, why, time.time())
        return len(rows)

    def _requeue_stale(self, conn: sqlite3.Connection, now: float) -> None:
        stale = conn.execute(
            "SELECT * FROM jobs WHERE status = 'running' AND heartbeat_at < ?",
            (now - self.stale_after,),
        ).fetchall()
        self._requeue(conn, stale, "stopped heartbeating", now)

    def _requeue(
        self, conn: sqlite3.Connection, rows: Iterable[sqlite3.Row], why: str, now: float
    ) -> None:
        for row in rows:
            lost = f"worker {row['worker']} {why}"
            sibling = conn.execute(
                "SELECT * FROM jobs WHERE project = ? AND kind = ? AND status = 'queued'",
                (row["project"], row["kind"]),
            ).fetchone()
            if row["attempts"] >= self.max_attempts:
                status, error = "failed", f"{lost}, {row['attempts']} workers died on it; gave up"
            elif sibling is not None:
                # The queued job redoes this work with newer data; hand it our requests.
                status, error = "cancelled", f"{lost}; merged into queued job {sibling['id']}"
                reasons = json.loads(sibling["reasons"])
                for name, n in json.loads(row["reasons"]):
                    _add_reason(reasons, name, n)
                conn.execute(
                    "UPDATE jobs SET reasons = ?, payload = ?, coalesced = coalesced + ?"
                    " WHERE seq = ?",
                    (
                        json.dumps(reasons),
                        _merge(json.loads(row["payload"]), json.loads(sibling["payload"])),
                        row["coalesced"],
                        sibling["seq"],
                    ),
                )
            else:
                status, error = "queued", None
            log.warning("Job %s: %s; now %s", row["id"], lost, status)
            conn.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ?, started_at = ?,"
                " heartbeat_at = ?, worker = ? WHERE seq = ?",
                (
                    status,
                    error,
                    None if status == "queued" else now,
                    None if status == "queued" else row["started_at"],
                    None if status == "queued" else row["heartbeat_at"],
                    None if status == "queued" else row["worker"],
                    row["seq"],
                ),
            )
