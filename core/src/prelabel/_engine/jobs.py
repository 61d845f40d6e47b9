"""A durable job queue in the state database (the store's SQLite file, or PostgreSQL).

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

:class:`Job` (one row as stored) is defined in :mod:`prelabel._engine.jobrecord`.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, get_args

from prelabel._engine.engines import open_database
from prelabel._engine.jobrecord import Job, JobStatus, add_reason, job_from_row, merge_payload
from prelabel.database import Database, Executor
from prelabel.errors import NotFound
from prelabel.project import ProjectKey

__all__ = ["Job", "JobQueue", "JobStatus"]

log = logging.getLogger(__name__)

_FINISHED = "('succeeded', 'failed', 'cancelled')"
#: Every read-modify-write of the queue takes this lock (on PostgreSQL; SQLite has one anyway).
_LOCK = "jobs"

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
    # delivery: the RQ job that delivers it to a worker (PRELABEL_REDIS_URL), see rqjobs.
    ("ALTER TABLE jobs ADD COLUMN delivery TEXT",),
)


class JobQueue:
    """Jobs in the state database (usually ``ProjectStore.database``)."""

    def __init__(
        self,
        database: Database | Path | str,
        *,
        stale_after: float = 600.0,
        max_attempts: int = 3,
        keep_finished: int = 1000,
    ) -> None:
        """Open the queue, creating its table if needed.

        Args:
            database: the state database, or a SQLite path or PostgreSQL URL.
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
        self._db = open_database(database)
        self._db.migrate("jobs", _SCHEMA)
        self._listeners: builtins.list[Callable[[Job, bool], None]] = []

    def add_listener(self, callback: Callable[[Job, bool], None]) -> None:
        """Call ``callback(job, created)`` after each enqueue in this process: runners wake up
        on it, and RQ delivers jobs ``created`` (not merged into a queued one)."""
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
        with self._db.write(lock=_LOCK) as conn:
            row = conn.execute(
                "SELECT seq, reasons, payload FROM jobs"
                " WHERE project = ? AND kind = ? AND status = 'queued'",
                (str(project), kind),
            ).fetchone()
            created = row is None
            if row is not None:
                seq = row["seq"]
                conn.execute(
                    "UPDATE jobs SET reasons = ?, payload = ?, coalesced = coalesced + 1"
                    " WHERE seq = ?",
                    (
                        add_reason(json.loads(row["reasons"]), reason),
                        merge_payload(json.loads(row["payload"]), payload or {}),
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
                        add_reason([], reason),
                        merge_payload({}, payload or {}),
                        time.time(),
                    ),
                )
            job = self._row(conn, "seq = ?", seq)
        for callback in self._listeners:
            callback(job, created)
        return job

    def claim(self, worker_id: str) -> Job | None:
        """Mark the oldest queued job of a project with no running job as ours, and return it.

        Requeues jobs of dead workers first. ``None`` when nothing can run now.
        """
        now = time.time()
        with self._db.write(lock=_LOCK) as conn:
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

    def claim_delivered(self, job_id: str, worker_id: str, delivery: str) -> Job | None:
        """Claim job ``job_id`` for the RQ job ``delivery`` that brought it (see rqjobs).

        A queued job is claimed unless its project has a running job (the job that finishes
        hands it on). A running job whose last delivery was this one is taken over: RQ
        delivers a job again only once the worker that ran it is gone; after
        ``max_attempts`` such claims it fails. ``None`` when there is nothing to run.
        """
        now = time.time()
        with self._db.write(lock=_LOCK) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row["status"] == "queued":
                busy = conn.execute(
                    "SELECT 1 FROM jobs WHERE project = ? AND status = 'running'",
                    (row["project"],),
                ).fetchone()
                if busy is not None:
                    return None
            elif row["status"] != "running" or row["delivery"] != delivery:
                return None
            elif row["attempts"] >= self.max_attempts:
                self._requeue(conn, [row], "was lost with its RQ job", now)
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?,"
                " worker = ?, attempts = attempts + 1, delivery = ? WHERE seq = ?",
                (now, now, worker_id, delivery, row["seq"]),
            )
            return self._row(conn, "seq = ?", row["seq"])

    def set_delivery(self, job_id: str, delivery: str) -> None:
        """Record the RQ job that delivers a queued job (a no-op once it runs)."""
        self._db.execute(
            "UPDATE jobs SET delivery = ? WHERE id = ? AND status = 'queued'", (delivery, job_id)
        )

    def ready(self, project: ProjectKey | None = None) -> builtins.list[Job]:
        """The oldest queued job of each project with no running job (of ``project`` only)."""
        where, args = ("AND j.project = ?", (str(project),)) if project else ("", ())
        rows = self._db.execute(
            "SELECT * FROM jobs j WHERE status = 'queued' AND seq = (SELECT MIN(seq) FROM jobs q"
            " WHERE q.project = j.project AND q.status = 'queued') AND NOT EXISTS (SELECT 1"
            f" FROM jobs r WHERE r.project = j.project AND r.status = 'running') {where}"
            " ORDER BY seq",
            args,
        )
        return [job_from_row(row) for row in rows]

    def requeue_stale(self) -> None:
        """Hand running jobs silent for ``stale_after`` back to the queue (see the module doc)."""
        with self._db.write(lock=_LOCK) as conn:
            self._requeue_stale(conn, time.time())

    def heartbeat(self, job_id: str, *, worker_id: str | None = None) -> bool:
        """Record that the job's worker is alive; ``False`` if the job is no longer running
        (or, given ``worker_id``, no longer run by that worker)."""
        sql = "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'"
        if worker_id is None:
            return self._db.execute(sql, (time.time(), job_id)).rowcount > 0
        return (
            self._db.execute(f"{sql} AND worker = ?", (time.time(), job_id, worker_id)).rowcount > 0
        )

    def report(self, job_id: str, progress: Mapping[str, Any]) -> None:
        """Record a running job's progress (shown by ``/jobs``); a no-op once it finished."""
        self._db.execute(
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
        with self._db.write(lock=_LOCK) as conn:
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
        with self._db.write(lock=_LOCK) as conn:
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
        return self._row(self._db, "id = ?", job_id)

    def list(self, project: ProjectKey | None = None, *, limit: int = 50) -> builtins.list[Job]:
        """The newest ``limit`` jobs, of one project or of all, newest first."""
        if project is None:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,))
        elif project.generation is None:
            # A bare id ("4") means every generation of that project id.
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE project_id = ? ORDER BY seq DESC LIMIT ?",
                (project.id, limit),
            )
        else:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE project = ? ORDER BY seq DESC LIMIT ?",
                (str(project), limit),
            )
        return [job_from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status (every status present, for ``/metrics``)."""
        counts = dict.fromkeys(get_args(JobStatus), 0)
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = n
        return counts

    def _row(self, conn: Executor, where: str, value: Any) -> Job:
        row = conn.execute(f"SELECT * FROM jobs WHERE {where}", (value,)).fetchone()
        if row is None:
            raise NotFound(
                f"No job {value!r}: the id is unknown, or the job finished long ago and was"
                f" deleted (the newest {self.keep_finished} finished jobs are kept)."
            )
        return job_from_row(row)

    def requeue_lost(self, worker_ids: Iterable[str], why: str) -> int:
        """Hand the running jobs of workers known to be gone back to the queue now.

        Used when a worker process is seen dead (no need to wait ``stale_after``); the same
        rules as for a stale heartbeat apply. Returns how many jobs were affected.
        """
        ids = builtins.list(worker_ids)
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        with self._db.write(lock=_LOCK) as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status = 'running' AND worker IN ({marks})", ids
            ).fetchall()
            self._requeue(conn, rows, why, time.time())
        return len(rows)

    def _requeue_stale(self, conn: Executor, now: float) -> None:
        stale = conn.execute(
            "SELECT * FROM jobs WHERE status = 'running' AND heartbeat_at < ?",
            (now - self.stale_after,),
        ).fetchall()
        self._requeue(conn, stale, "stopped heartbeating", now)

    def _requeue(self, conn: Executor, rows: Iterable[Any], why: str, now: float) -> None:
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
                    add_reason(reasons, name, n)
                conn.execute(
                    "UPDATE jobs SET reasons = ?, payload = ?, coalesced = coalesced + ?"
                    " WHERE seq = ?",
                    (
                        json.dumps(reasons),
                        merge_payload(json.loads(row["payload"]), json.loads(sibling["payload"])),
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
