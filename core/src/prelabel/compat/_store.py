"""Per-project key/value state and the webhook log of compat models, in the state database.

Both live in the model directory's SQLite file (WAL, one connection per thread and process,
see :mod:`prelabel.database`) or in PostgreSQL with ``PRELABEL_DATABASE_URL``, so every
gunicorn worker and the training thread see a value the moment it is committed: no
in-process cache can go stale (the reference SDK memoises reads, protocol §11.4 item 7).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from prelabel._engine.engines import open_database
from prelabel.database import DB_NAME, Database

__all__ = ["CompatStore"]

log = logging.getLogger(__name__)

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS compat_kv (project TEXT NOT NULL, key TEXT NOT NULL,"
        " value TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (project, key))",
        "CREATE INDEX IF NOT EXISTS compat_kv_key ON compat_kv (key, updated_at)",
        "CREATE TABLE IF NOT EXISTS compat_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " project TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS compat_events_project ON compat_events (project, seq)",
    ),
)

#: Pending webhook bodies kept per project when no job consumes them (oldest dropped).
MAX_PENDING_EVENTS = 1000


class CompatStore:
    """Key/value pairs (any JSON value) per project, and webhook bodies waiting for ``fit``."""

    def __init__(self, model_dir: Path, database: Database | Path | str | None = None) -> None:
        self._db = open_database(database if database is not None else model_dir / DB_NAME)
        self._db.migrate("compat", _SCHEMA)

    def get(self, project: str, key: str) -> Any:
        """The value, or ``None`` when the key is not set."""
        row = self._db.execute(
            "SELECT value FROM compat_kv WHERE project = ? AND key = ?", (project, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def has(self, project: str, key: str) -> bool:
        """Whether the key is set for the project."""
        row = self._db.execute(
            "SELECT 1 FROM compat_kv WHERE project = ? AND key = ?", (project, key)
        ).fetchone()
        return row is not None

    def set(self, project: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable value.

        Raises:
            TypeError: the value cannot be written as JSON.
        """
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"set({key!r}, …): the value must be JSON-serialisable (str, number, list, dict…),"
                f" got {type(value).__name__}: {exc}"
            ) from None
        self._db.execute(
            "INSERT INTO compat_kv (project, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (project, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (project, key, text, time.time()),
        )

    def newest(self, key: str) -> Any:
        """The most recently written value of ``key`` in any project, or ``None``."""
        row = self._db.execute(
            "SELECT value FROM compat_kv WHERE key = ? ORDER BY updated_at DESC LIMIT 1", (key,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def add_event(self, project: str, body: dict[str, Any]) -> None:
        """Keep a webhook body until a training job hands it to ``fit``."""
        with self._db.write(lock=f"compat:{project}") as conn:
            conn.execute(
                "INSERT INTO compat_events (project, body, created_at) VALUES (?, ?, ?)",
                (project, json.dumps(body, default=str), time.time()),
            )
            dropped = conn.execute(
                "DELETE FROM compat_events WHERE project = ? AND seq <= (SELECT seq FROM"
                " compat_events WHERE project = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (project, project, MAX_PENDING_EVENTS),
            ).rowcount
        if dropped:
            log.warning(
                "Project %s: more than %d webhook events wait for training; dropped the oldest %d"
                " (is the job runner running?).",
                project,
                MAX_PENDING_EVENTS,
                dropped,
            )

    def take_events(self, project: str) -> list[dict[str, Any]]:
        """Remove and return the project's pending webhook bodies, oldest first."""
        with self._db.write(lock=f"compat:{project}") as conn:
            rows = conn.execute(
                "SELECT seq, body FROM compat_events WHERE project = ? ORDER BY seq", (project,)
            ).fetchall()
            if rows:
                conn.execute(
                    "DELETE FROM compat_events WHERE project = ? AND seq <= ?",
                    (project, rows[-1][0]),
                )
        return [json.loads(row[1]) for row in rows]
