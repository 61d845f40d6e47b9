"""Which database engine serves a target: the SQLite file, or PostgreSQL for a URL."""

from __future__ import annotations

import threading
from pathlib import Path

from prelabel.database import DB_NAME, Database, SqliteDatabase
from prelabel.errors import ConfigError

__all__ = ["database_target", "open_database"]


def database_target(database_url: str | None, model_dir: Path) -> Path | str:
    """What :func:`open_database` opens for these settings: the URL, else the SQLite file."""
    return database_url or model_dir / DB_NAME


_opened: dict[str, Database] = {}
_opened_lock = threading.Lock()


def open_database(target: Database | Path | str) -> Database:
    """A :class:`Database` for ``target``: a new one for a SQLite path (cheap), this
    process's one for a PostgreSQL URL (one connection pool per process).

    Raises:
        ConfigError: the URL names no engine prelabel supports, or the PostgreSQL driver is
            not installed.
    """
    if isinstance(target, Database):
        return target
    if isinstance(target, Path):
        return SqliteDatabase(target)
    key = str(target)
    with _opened_lock:
        found = _opened.get(key)
        if found is None:
            found = _opened[key] = _make(target)
        return found


def _make(target: str) -> Database:
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"PRELABEL_DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432"
            f"/db), got scheme {scheme or 'none'!r}; leave it unset for the embedded SQLite file."
        )
    try:
        from prelabel._engine.postgres import PostgresDatabase
    except ImportError as exc:
        raise ConfigError(
            f"PRELABEL_DATABASE_URL needs the PostgreSQL driver ({exc.name} is missing):"
            " pip install 'prelabel[scale]'"
        ) from None
    return PostgresDatabase(target)
