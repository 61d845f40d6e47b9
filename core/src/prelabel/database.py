"""The state database: SQLite by default, PostgreSQL with ``PRELABEL_DATABASE_URL``.

One thin DB-API layer rather than an ORM or SQLAlchemy Core: the SQL stays the plain text
every module writes, with ``?`` placeholders, and the two engines differ only where they
must (``prelabel._engine.postgres`` says how). Public because a backend that keeps state of
its own which every replica must see uses it too (:attr:`prelabel.Context.shared_database`).

* :class:`Database` is the interface: ``execute`` (one autocommitted statement), ``read()`` (a
  consistent snapshot), ``write(lock=…)`` (a read-modify-write transaction) and ``migrate``.
* ``write()`` serialises writers. SQLite has one global write lock (``BEGIN IMMEDIATE``), so
  its ``lock`` argument changes nothing. On PostgreSQL ``lock`` names a transaction-scoped
  advisory lock: :data:`GLOBAL` by default (SQLite's semantics), a narrower name such as
  ``"jobs"`` or ``"versions:4.1795807427"`` where that is all a transaction must exclude, and
  ``None`` for statements that are safe on their own (upserts, single-row updates).
* the server picks the engine for its settings and opens one :class:`Database` per process,
  shared by the store, the job queue, the acceptance tracker and the backend.

The SQLite file (``<model dir>/prelabel.db``) is opened by several gunicorn workers and a
worker process, so:

* one connection per thread *and* process: sqlite3 connections must not cross threads, and
  one inherited through ``fork`` (gunicorn ``--preload``) must not be used by the child;
* WAL journal, so readers (``/predict``) never wait for a writer and a writer never waits
  for readers; it needs a local file system (not NFS: use PostgreSQL to share state);
* a ``schema_versions`` table with one row per component, for migrations.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from prelabel.errors import ConfigError

__all__ = [
    "DB_NAME",
    "GLOBAL",
    "Connection",
    "Database",
    "Executor",
    "Migration",
    "Rows",
    "SqliteDatabase",
    "redact",
]

log = logging.getLogger(__name__)

#: The SQLite file under the model directory.
DB_NAME = "prelabel.db"

#: The lock ``write()`` takes by default: every writer excludes every other one.
GLOBAL = "prelabel"

#: One migration is a sequence of SQL statements; a component's version is how many ran.
Migration = Sequence[str]

_SCHEMA_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_versions"
    " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


class Rows(Protocol):
    """What a statement returns: rows indexable by position and by column name."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Executor(Protocol):
    """Anything that runs a statement: a :class:`Database` or a :class:`Connection`."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Rows: ...


class Connection(Executor, Protocol):
    """A connection inside ``read()``/``write()``."""

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Rows: ...


class Database(ABC):
    """The interface both engines implement; see the module docstring."""

    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: str
    #: Where it is, for messages (a path, or a URL without its password).
    location: str

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement in its own transaction and return its rows."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Connection]:
        """A read-only transaction: several SELECTs see one consistent snapshot."""

    @abstractmethod
    def write(self, lock: str | None = GLOBAL) -> AbstractContextManager[Connection]:
        """A transaction committed on exit, rolled back on an exception.

        Args:
            lock: what the transaction excludes others from (see the module docstring).
        """

    @abstractmethod
    def close(self) -> None:
        """Give back this process's connections (the object stays usable)."""

    def migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        """Bring ``component``'s tables up to ``len(migrations)``; idempotent, process-safe."""
        with self.write(lock="schema") as conn:
            conn.execute(self.ddl(_SCHEMA_VERSIONS))
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise ConfigError(
                    f"{self.location} has {component} schema version {current}, newer than"
                    f" this prelabel knows ({len(migrations)}); upgrade prelabel or use another"
                    " database."
                )
            for statements in migrations[current:]:
                for statement in statements:
                    conn.execute(self.ddl(statement))
            if current < len(migrations):
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, len(migrations)),
                )
                log.info(
                    "%s: %s schema %d -> %d", self.location, component, current, len(migrations)
                )

    def ddl(self, statement: str) -> str:
        """A schema statement in this engine's dialect (the migrations are written for SQLite)."""
        return statement


class SqliteDatabase(Database):
    """Hands each thread of each process its own connection to one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.location = str(path)
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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.connect().execute(sql, params)

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextmanager
    def write(self, lock: str | None = GLOBAL) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: SQLite's one write lock, whatever ``lock`` names."""
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
        conn = self.connect()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
