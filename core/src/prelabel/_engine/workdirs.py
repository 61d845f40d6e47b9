"""Temporary directories under ``<model dir>/tmp``: training work dirs and trash.

A work dir is named after the process that owns it, so one left by a training that was
killed is removed at the next start of any prelabel process (server, job), not after days.
Removal goes through trash: a rename first, so a directory vanishes atomically for readers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from prelabel._engine.liveness import pid_alive, pid_started_at
from prelabel.project import ProjectKey

__all__ = ["empty", "leftovers", "new_work_dir", "to_trash"]

_TRASH = ".trash-"
_WORK = "work-"


def new_work_dir(tmp: Path, key: ProjectKey) -> Path:
    """A new, empty work dir under ``tmp`` for a training of ``key`` by this process."""
    return Path(tempfile.mkdtemp(prefix=f"{_WORK}{os.getpid()}-{key.slug}-", dir=tmp))


def _orphaned(path: Path) -> bool:
    """Whether a work dir's process is gone (killed mid-training)."""
    pid = path.name.removeprefix(_WORK).split("-", 1)[0]
    if not pid.isdigit():
        return False  # an older layout: left to the age rule
    if not pid_alive(int(pid)):
        return True
    started = pid_started_at(int(pid))
    # A process younger than the directory is another one that reuses the pid.
    return started is not None and started > path.stat().st_mtime + 2.0


def leftovers(tmp: Path, max_age: float) -> list[Path]:
    """Entries of ``tmp`` nobody will finish: trash, orphaned work dirs, anything too old."""
    cutoff = time.time() - max_age
    found = []
    for path in tmp.iterdir():
        with contextlib.suppress(OSError):  # another process may be removing it too
            if (
                path.name.startswith(_TRASH)
                or path.stat().st_mtime < cutoff
                or (path.name.startswith(_WORK) and _orphaned(path))
            ):
                found.append(path)
    return found


def to_trash(tmp: Path, path: Path) -> Path:
    """Move ``path`` into ``tmp``'s trash (atomic for its readers); returns where it went."""
    trash = tmp / f"{_TRASH}{uuid.uuid4().hex}"
    os.replace(path, trash)
    return trash


def empty(paths: Iterable[Path]) -> None:
    """Remove ``paths`` (trash) and everything below them."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
