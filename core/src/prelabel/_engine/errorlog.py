"""The last error of each project, shown by ``/health`` and ``/jobs``.

A backend that fails quietly (media it cannot fetch, a model it cannot reach) leaves Label
Studio with empty predictions and the reason in the server's log only. The prediction runner
and ``/setup`` write the reason here, in the state database every server worker shares, one row
per project, overwritten by the next error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prelabel._engine.engines import open_database
from prelabel.database import Database
from prelabel.project import ProjectKey

__all__ = ["ErrorLog", "ProjectError"]

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS project_errors (project TEXT PRIMARY KEY,"
        " project_id TEXT NOT NULL, at REAL NOT NULL, source TEXT NOT NULL,"
        " message TEXT NOT NULL)",
    ),
)

#: A message is cut to this many characters: it is a summary, the log has the rest.
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class ProjectError:
    """One project's last error.

    Attributes:
        project: the project key (``"12.1795807427"``).
        at: when it happened (Unix time).
        source: where: ``"predict"`` or ``"setup"`` (failed training jobs are in ``/jobs``).
        message: what happened and, as prelabel's errors do, how to fix it.
    """

    project: str
    at: float
    source: str
    message: str


class ErrorLog:
    """Each project's last error, in the model directory's database."""

    def __init__(self, database: Database | Path | str) -> None:
        self._db = open_database(database)
        self._db.migrate("errors", _SCHEMA)

    def record(self, key: ProjectKey, source: str, message: str) -> None:
        """Make ``message`` the project's last error."""
        self._db.execute(
            "INSERT INTO project_errors (project, project_id, at, source, message)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (project) DO UPDATE SET at = excluded.at,"
            " source = excluded.source, message = excluded.message",
            (str(key), key.id, time.time(), source, message[:MAX_MESSAGE]),
        )

    def last(self, key: ProjectKey | None = None, *, limit: int = 50) -> list[ProjectError]:
        """The last error of each project, newest first; of ``key`` only if given.

        A bare project id (no generation) means every generation of that id, as in ``/jobs``.
        """
        sql = "SELECT project, at, source, message FROM project_errors"
        args: tuple[str | int, ...] = ()
        if key is not None and key.generation is None:
            sql, args = sql + " WHERE project_id = ?", (key.id,)
        elif key is not None:
            sql, args = sql + " WHERE project = ?", (str(key),)
        rows = self._db.execute(sql + " ORDER BY at DESC LIMIT ?", (*args, limit))
        return [ProjectError(*row) for row in rows]
