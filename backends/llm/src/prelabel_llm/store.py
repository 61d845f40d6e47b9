"""What the backend keeps on disk: the response cache, token/cost usage and remembered prompts.

One SQLite file (``<state_dir>/llm.sqlite``) shared by threads and server processes. The cache
is global (the same request costs the same whatever the project); usage and prompts are per
project.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Store", "Usage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    project TEXT PRIMARY KEY, calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cost REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (project TEXT PRIMARY KEY, prompt TEXT NOT NULL, updated REAL NOT NULL);
"""


@dataclass(frozen=True)
class Usage:
    """A project's spending so far."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class Store:
    """The backend's state in one SQLite file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # One connection behind a lock: writes are tiny, and SQLite serialises them anyway.
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """The cached response for ``key``, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        """Remember the response for ``key``."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO cache (key, value, created) VALUES (?, ?, ?)",
                (key, json.dumps(value), time.time()),
            )

    def usage(self, project: str) -> Usage:
        """What ``project`` has spent."""
        with self._lock:
            row = self._db.execute(
                "SELECT calls, input_tokens, output_tokens, cost FROM usage WHERE project = ?",
                (project,),
            ).fetchone()
        return Usage() if row is None else Usage(*row)

    def add_usage(self, project: str, input_tokens: int, output_tokens: int, cost: float) -> None:
        """Count one provider call against ``project``."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO usage (project, calls, input_tokens, output_tokens, cost) "
                "VALUES (?, 1, ?, ?, ?) ON CONFLICT(project) DO UPDATE SET "
                "calls = calls + 1, input_tokens = input_tokens + excluded.input_tokens, "
                "output_tokens = output_tokens + excluded.output_tokens, "
                "cost = cost + excluded.cost",
                (project, input_tokens, output_tokens, cost),
            )

    def prompt(self, project: str) -> str | None:
        """The prompt an annotator last typed for ``project``."""
        with self._lock:
            row = self._db.execute(
                "SELECT prompt FROM prompts WHERE project = ?", (project,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_prompt(self, project: str, prompt: str) -> None:
        """Remember ``prompt`` for ``project``'s batch runs."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO prompts (project, prompt, updated) VALUES (?, ?, ?)",
                (project, prompt, time.time()),
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
