"""Whether the model directory can take writes: checked at start and on every ``/health``.

A read-only or full disk used to go unnoticed: ``/health`` said UP while every webhook failed,
and Label Studio never resends a webhook. The checks here are a few system calls, cheap
enough for ``/health`` (which LS calls on every Data Manager page load).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
import uuid
from pathlib import Path

from prelabel.errors import ConfigError

__all__ = ["MIN_FREE_BYTES", "WriteFailures", "is_store_failure", "require_writable", "unwritable"]

#: Below this much free space SQLite's next transaction may fail: report the disk as full.
MIN_FREE_BYTES = 16 * 1024 * 1024

#: OSError numbers that mean "this disk takes no writes", not "this request was wrong".
_DISK_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EACCES})
#: sqlite3.OperationalError messages with the same meaning.
_SQLITE_DISK = ("readonly", "disk is full", "disk i/o error", "unable to open database")


def unwritable(root: Path) -> str | None:
    """Why ``root`` (the model directory) cannot take writes now, or ``None``."""
    # /health calls this: one system call per path when all is well (each one lets the busy
    # request threads take the GIL), a second only for a path that cannot be written.
    for path in (root, root / "prelabel.db", root / "prelabel.db-wal", root / "tmp"):
        if not os.access(path, os.W_OK) and path.exists():
            return f"{path} is not writable (read-only file system or permissions)"
    try:
        stat = os.statvfs(root)
    except OSError as exc:
        return f"{root} cannot be inspected: {exc.strerror}"
    free = stat.f_bavail * stat.f_frsize
    if free < MIN_FREE_BYTES:
        return f"the disk of {root} is full ({free // 1024} KiB free)"
    return None


def require_writable(root: Path) -> None:
    """Raise :class:`ConfigError` at start unless ``root`` can be created and written."""
    probe = root / f".write-probe-{uuid.uuid4().hex}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"PRELABEL_MODEL_DIR {root} is not writable ({exc.strerror}): prelabel keeps its "
            "database, model versions and media cache there. Mount it read-write, fix its "
            "owner, or point PRELABEL_MODEL_DIR elsewhere."
        ) from None
    problem = unwritable(root)
    if problem is not None:
        raise ConfigError(f"PRELABEL_MODEL_DIR cannot be used: {problem}.")


def is_store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the disk takes no writes (read-only, full, I/O error)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(marker in text for marker in _SQLITE_DISK)
    return isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS


class WriteFailures:
    """The last failed write of this process, reported for ``window`` seconds after it."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._last: tuple[float, str] | None = None

    def record(self, exc: BaseException) -> None:
        self._last = (time.monotonic(), f"{type(exc).__name__}: {exc}")

    def clear(self) -> None:
        """A later write succeeded: the store takes writes again."""
        self._last = None

    def recent(self) -> str | None:
        last = self._last
        if last is None or time.monotonic() - last[0] > self.window:
            return None
        return f"a write failed {time.monotonic() - last[0]:.0f} s ago ({last[1]})"
