"""The SQLite file shared by the project store and the job queue (``<model dir>/prelabel.db``).

Several gunicorn workers and a worker process open the same file, so:

* one connection per thread *and* process: sqlite3 connections must not cross threads, and
  one inherited through ``fork`` (gunicorn ``--preload``) must not be used by the child;
* WAL journal, so readers (``/predict``) never wait for a writer and a writer never waits
  for readers; it needs a local file system (not NFS);
* ``BEGIN IMMEDIATE`` for every read-modify-write, so concurrent writers queue on the write
  lock (up to ``busy_timeout``) instead of failing with "database is locked" at commit;
* a ``schema_versions`` table with one row per component, for migrations.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prelabel.errors import ConfigError

__all__ = ["Database"]

log = logging.getLogger(__name__)

#: One migration is a sequence of SQL statements; a component's version is how many ran.
Migration = Sequence[str]


class Database:
    """Hands each thread of each process its own connection to one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # Connections inherited through fork are parked here, never used or closed: closing
        # one in the child could disturb the parent's locks.
        self._abandoned: list[sqlite3.Connection] = []

    def connect(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (autocommit; transactions explicit)."""
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == pid:
            return conn
        if conn is not None:
            self._abandoned.append(conn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is safe from corruption in WAL mode; a power cut may lose the last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn, self._local.pid = conn, pid
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on exit, rolled back on an exception."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (disk full); this connection lives on in its
            # thread, so it must never be left inside a transaction.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent snapshot."""
        conn = self.connect()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        """Bring ``component``'s tables up to ``len(migrations)``; idempotent, process-safe."""
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions"
                " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise ConfigError(
                    f"{self.path} has {component} schema version {current}, newer than this"
                    f" prelabel knows ({len(migrations)}); upgrade prelabel or use another"
                    " PRELABEL_MODEL_DIR."
                )
            for statements in migrations[current:]:
                for statement in statements:
                    conn.execute(statement)
            if current < len(migrations):
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, len(migrations)),
                )
                log.info("%s: %s schema %d -> %d", self.path, component, current, len(migrations))
