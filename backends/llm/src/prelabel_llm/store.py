"""What the backend keeps: the response cache, token/cost usage and remembered prompts.

In one database shared by threads and server processes: the SQLite file
``<state_dir>/llm.sqlite`` by default, or the deployment's PostgreSQL
(:attr:`prelabel.Context.shared_database`) when replicas run on several machines, so a
project's budget and prompt are the same whichever replica serves it. The cache is global
(the same request costs the same whatever the project); usage and prompts are per project.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel.database import Database, SqliteDatabase

__all__ = ["Store", "Usage"]

# The table names of the llm.sqlite files written before this schema had a version: IF NOT
# EXISTS adopts them with their data.
_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
        " created REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS usage (project TEXT PRIMARY KEY, calls INTEGER NOT NULL,"
        " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS prompts (project TEXT PRIMARY KEY, prompt TEXT NOT NULL,"
        " updated REAL NOT NULL)",
    ),
)


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
    """The backend's state in one database (thread- and process-safe)."""

    def __init__(self, database: Database | Path) -> None:
        """Open the store: in ``database``, or in the SQLite file at that path."""
        if isinstance(database, Path):
            database.parent.mkdir(parents=True, exist_ok=True)
            database = SqliteDatabase(database)
        self._db = database
        self._db.migrate("llm", _SCHEMA)

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """The cached response for ``key``, or ``None``."""
        row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        """Remember the response for ``key``."""
        self._db.execute(
            "INSERT INTO cache (key, value, created) VALUES (?, ?, ?) ON CONFLICT (key)"
            " DO UPDATE SET value = excluded.value, created = excluded.created",
            (key, json.dumps(value), time.time()),
        )

    def usage(self, project: str) -> Usage:
        """What ``project`` has spent."""
        row = self._db.execute(
            "SELECT calls, input_tokens, output_tokens, cost FROM usage WHERE project = ?",
            (project,),
        ).fetchone()
        return Usage() if row is None else Usage(*row)

    def add_usage(self, project: str, input_tokens: int, output_tokens: int, cost: float) -> None:
        """Count one provider call against ``project`` (one statement: safe from anywhere)."""
        self._db.execute(
            "INSERT INTO usage (project, calls, input_tokens, output_tokens, cost)"
            " VALUES (?, 1, ?, ?, ?) ON CONFLICT (project) DO UPDATE SET"
            " calls = usage.calls + 1,"
            " input_tokens = usage.input_tokens + excluded.input_tokens,"
            " output_tokens = usage.output_tokens + excluded.output_tokens,"
            " cost = usage.cost + excluded.cost",
            (project, input_tokens, output_tokens, cost),
        )

    def prompt(self, project: str) -> str | None:
        """The prompt an annotator last typed for ``project``."""
        row = self._db.execute(
            "SELECT prompt FROM prompts WHERE project = ?", (project,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_prompt(self, project: str, prompt: str) -> None:
        """Remember ``prompt`` for ``project``'s batch runs."""
        self._db.execute(
            "INSERT INTO prompts (project, prompt, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (project) DO UPDATE SET prompt = excluded.prompt,"
            " updated = excluded.updated",
            (project, prompt, time.time()),
        )

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
