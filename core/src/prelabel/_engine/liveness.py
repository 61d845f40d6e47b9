"""Which training workers are alive: each ``prelabel worker`` beats into the shared database.

``/health`` and ``/metrics`` read it (a backend that trains with no live worker queues jobs
forever), and a worker starting on a host hands the jobs of that host's dead workers back to
the queue at once instead of after ``PRELABEL_JOB_STALE_SECONDS``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from prelabel._engine.engines import open_database
from prelabel.database import Database

__all__ = [
    "BEAT_SECONDS",
    "WorkerInfo",
    "WorkerRegistry",
    "new_worker_id",
    "pid_alive",
    "pid_started_at",
]

#: How often a worker records that it is alive; three missed beats and it counts as gone.
BEAT_SECONDS = 5.0

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, host TEXT NOT NULL,"
        " pid INTEGER NOT NULL, started_at REAL NOT NULL, seen_at REAL NOT NULL)",
    ),
)


def new_worker_id() -> str:
    """``<host>:<pid>:<random>``: unique, and says where to look for the process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (not Linux): kill(0) succeeded


def pid_started_at(pid: int) -> float | None:
    """When the process with this id started (Unix time), ``None`` if unknown (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rsplit(")", 1)[-1].split()[19])
        with open("/proc/stat", encoding="ascii") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _gone(worker: WorkerInfo) -> bool:
    """Whether a registered worker's process no longer exists.

    Its pid may belong to another process by now: after a container restart the new worker
    often gets the very pid of the old one. A process that started after the worker
    registered is not that worker.
    """
    if not pid_alive(worker.pid):
        return True
    started = pid_started_at(worker.pid)
    # /proc's start time has clock-tick and boot-time-rounding error: allow 2 s.
    return started is not None and started > worker.started_at + 2.0


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as last seen."""

    id: str
    host: str
    pid: int
    started_at: float
    seen_at: float


class WorkerRegistry:
    """Worker heartbeats in the state database (table ``workers``)."""

    def __init__(self, database: Database | Path | str) -> None:
        self._db = open_database(database)
        self._db.migrate("workers", _SCHEMA)

    def beat(self, worker_id: str) -> None:
        """Record that ``worker_id`` (made by :func:`new_worker_id`) is alive now."""
        host, pid, _ = worker_id.rsplit(":", 2)
        now = time.time()
        self._db.execute(
            "INSERT INTO workers (id, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (worker_id, host, int(pid), now, now),
        )

    def forget(self, worker_id: str) -> None:
        """A worker that stops cleanly removes itself."""
        self._db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, most recently seen first."""
        rows = self._db.execute(
            "SELECT id, host, pid, started_at, seen_at FROM workers ORDER BY seen_at DESC"
        )
        return [WorkerInfo(*tuple(row)) for row in rows]

    def alive(self) -> int:
        """How many workers were seen within three heartbeats."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM workers WHERE seen_at >= ?", (time.time() - 3 * BEAT_SECONDS,)
        )
        return int(row.fetchone()[0])

    def dead_on_this_host(self) -> list[str]:
        """Ids of registered workers of this host whose process is gone."""
        host = socket.gethostname()
        return [w.id for w in self.workers() if w.host == host and _gone(w)]

    def prune(self, older_than: float) -> None:
        """Forget workers not seen for ``older_than`` seconds (they are long gone)."""
        self._db.execute("DELETE FROM workers WHERE seen_at < ?", (time.time() - older_than,))
