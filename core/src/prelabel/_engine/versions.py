"""Model versions of a project and their artifact directories (a base class of ``ProjectStore``).

A version's artifacts live in ``projects/<slug>/versions/<number>/`` under the model
directory. Promotion renames a work dir from ``tmp/`` into place and commits the version row
while holding the database's write lock; a crash in between leaves a directory no committed
row references, which the next start (or the next promotion of that number) removes, and the
served version is never touched. Deletions rename into ``tmp/.trash-*`` first, so a directory
disappears atomically for its readers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel._engine.artifacts import ArtifactStore
from prelabel._engine.workdirs import empty, leftovers, new_work_dir, to_trash
from prelabel.database import Database, Executor
from prelabel.errors import NotFound
from prelabel.project import ProjectKey

__all__ = ["SCHEMA", "VersionInfo", "VersionStore"]

log = logging.getLogger(__name__)

SCHEMA = (
    # artifacts = 0: rejected (never had any) or pruned.
    "CREATE TABLE IF NOT EXISTS versions (project TEXT NOT NULL, number INTEGER NOT NULL,"
    " name TEXT NOT NULL, path TEXT NOT NULL, created_at REAL NOT NULL,"
    " metrics TEXT NOT NULL, status TEXT NOT NULL, artifacts INTEGER NOT NULL,"
    " PRIMARY KEY (project, number))",
    # The database itself guarantees at most one current and one previous per project.
    "CREATE UNIQUE INDEX IF NOT EXISTS versions_current ON versions (project)"
    " WHERE status = 'current'",
    "CREATE UNIQUE INDEX IF NOT EXISTS versions_previous ON versions (project)"
    " WHERE status = 'previous'",
)

#: Every write of versions takes this lock: numbers are allocated as MAX + 1, and the start-up
#: cleanup must not see a version directory between its rename and its row's commit.
_LOCK = "versions"
_VERSION_COLUMNS = "number, name, path, created_at, metrics, status"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class VersionInfo:
    """One trained model version of a project.

    Attributes:
        project: the project it belongs to.
        name: the ``model_version`` string Label Studio sees, e.g. ``"textcls-3"``.
        number: 1, 2, 3… per project, never reused.
        path: its artifacts directory. It does not exist for a ``"rejected"`` version (a
            challenger that lost the promotion gate keeps only its metrics) nor for one whose
            artifacts :meth:`ProjectStore.prune` deleted.
        created_at: Unix time of promotion or rejection.
        metrics: what training reported (held-out scores, counts).
        status: ``"current"`` (served), ``"previous"`` (what :meth:`ProjectStore.rollback`
            restores), ``"retired"`` or ``"rejected"``.
    """

    project: ProjectKey
    name: str
    number: int
    path: Path
    created_at: float
    metrics: Mapping[str, float]
    status: str


class VersionStore:
    """Versions per project: promotion, rejection, rollback, pruning.

    A base class of ``ProjectStore``, which provides ``root``, ``_db`` and ``artifacts``.
    """

    root: Path
    _db: Database
    #: Shared storage for the versions' files (``PRELABEL_ARTIFACTS_URL``), if any.
    artifacts: ArtifactStore | None

    # -- queries --------------------------------------------------------------------------

    def current_version(self, key: ProjectKey) -> VersionInfo | None:
        """The version to serve, or ``None`` before the first promotion (the base model)."""
        return self._current(self._db, key)

    def versions(self, key: ProjectKey) -> list[VersionInfo]:
        """Every version of ``key``, rejected ones included, newest first.

        A bare id (no generation) means every generation of that project id, as in ``/jobs``.
        """
        if key.generation is not None:
            rows = self._db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE project = ? ORDER BY number DESC",
                (str(key),),
            )
            return [self._version(key, row) for row in rows]
        # Ids are digits (or None; ProjectKey.parse checks): the LIKE pattern has no wildcard.
        rows = self._db.execute(
            f"SELECT project, {_VERSION_COLUMNS} FROM versions WHERE project = ? OR project LIKE ?"
            " ORDER BY created_at DESC, number DESC",
            (key.id, f"{key.id}.%"),
        )
        return [self._version(ProjectKey.parse(row["project"]), row) for row in rows]

    def all_version_names(self) -> list[str]:
        """Names that may appear on predictions in LS (all but rejected), newest first, deduped.

        ``GET /versions`` carries no project, so this spans all projects.
        """
        rows = self._db.execute(
            "SELECT name FROM versions WHERE status != 'rejected'"
            " GROUP BY name ORDER BY MAX(created_at) DESC"
        )
        return [row[0] for row in rows]

    def local_path(self, version: VersionInfo) -> Path:
        """The directory of ``version``'s files on this machine (fetched from the shared
        storage on first use)."""
        if self.artifacts is None:
            return version.path
        return self.artifacts.local(version.path.relative_to(self.root).as_posix())

    @contextlib.contextmanager
    def new_version_dir(self, key: ProjectKey) -> Iterator[Path]:
        """An empty work dir under ``root/tmp`` (same file system, so promotion is a rename).

        Removed on exit unless :meth:`promote` moved it into place.
        """
        path = new_work_dir(self.root / "tmp", key)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def promote(
        self, key: ProjectKey, workdir: Path, *, name_prefix: str, metrics: Mapping[str, float]
    ) -> VersionInfo:
        """Make ``workdir``'s artifacts the served version ``f"{name_prefix}-{number}"``.

        In one transaction: rename ``workdir`` to ``projects/<slug>/versions/<number>/``, insert
        the version as ``"current"``, demote the old current to ``"previous"`` and the old
        previous to ``"retired"``. A work dir on another file system is copied in first (the
        original then stays where it is).
        """
        if not workdir.is_dir():
            raise FileNotFoundError(f"Cannot promote {workdir}: it is not a directory.")
        if self.artifacts is not None:
            return self._promote_shared(self.artifacts, key, workdir, name_prefix, metrics)
        staged = workdir if self._same_fs(workdir) else self._copy_in(key, workdir)
        (self.root / "projects" / key.slug / "versions").mkdir(parents=True, exist_ok=True)
        trash: list[Path] = []
        try:
            with self._db.write(lock=_LOCK) as conn:
                number = self._next_number(conn, key)
                target = self.root / self._rel(key, number)
                if target.exists():
                    # A crash between rename and commit left it: we hold the write lock and no
                    # committed row references this number.
                    trash.append(self._to_trash(target))
                os.replace(staged, target)
                try:
                    self._demote(conn, key)
                    info = self._insert(conn, key, number, name_prefix, metrics, "current")
                except BaseException:
                    # Hand the work dir back to its owner (who removes it); if even that fails,
                    # the orphan is removed at the next start.
                    with contextlib.suppress(OSError):
                        os.replace(target, staged)
                    raise
        finally:
            self._empty(trash)
            if staged != workdir:
                shutil.rmtree(staged, ignore_errors=True)
        log.info("Project %s: promoted %s, metrics %s", key, info.name, dict(metrics))
        return info

    def _promote_shared(
        self,
        artifacts: ArtifactStore,
        key: ProjectKey,
        workdir: Path,
        name_prefix: str,
        metrics: Mapping[str, float],
    ) -> VersionInfo:
        """:meth:`promote` with shared storage: upload under a fresh key, then commit the row.

        Uploading takes no lock; a failed commit deletes the upload again.
        """
        rel = f"projects/{key.slug}/artifacts/{uuid.uuid4().hex}"
        artifacts.upload(workdir, rel)
        try:
            with self._db.write(lock=_LOCK) as conn:
                number = self._next_number(conn, key)
                self._demote(conn, key)
                info = self._insert(conn, key, number, name_prefix, metrics, "current", rel=rel)
        except BaseException:
            artifacts.delete(rel)
            raise
        # This machine keeps the files it trained instead of fetching them again (a work dir
        # on another file system stays its owner's: then the first use fetches them).
        with contextlib.suppress(OSError):
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(workdir, self.root / rel)
        log.info("Project %s: promoted %s, metrics %s", key, info.name, dict(metrics))
        return info

    def record_rejected(
        self, key: ProjectKey, *, name_prefix: str, metrics: Mapping[str, float]
    ) -> VersionInfo:
        """Keep a challenger that lost the promotion gate in the history, without artifacts.

        It takes the next number, so names stay unique; its ``path`` does not exist.
        """
        with self._db.write(lock=_LOCK) as conn:
            number = self._next_number(conn, key)
            info = self._insert(conn, key, number, name_prefix, metrics, "rejected")
        log.info("Project %s: rejected %s, metrics %s", key, info.name, dict(metrics))
        return info

    def rollback(self, key: ProjectKey, to: str | None = None) -> VersionInfo:
        """Serve an earlier version again; the current one becomes ``"retired"``.

        Args:
            key: the project.
            to: the name of the version to serve (one whose artifacts are kept); by default
                the previous one.

        The newest retired version older than the restored one that still has artifacts
        becomes the new previous, so rolling back twice goes two versions back.

        Raises:
            NotFound: there is no previous version, or ``to`` names no version of the project
                that can be served (unknown, rejected, or its artifacts pruned).
        """
        project = str(key)
        with self._db.write(lock=_LOCK) as conn:
            current = self._current(conn, key)
            row = self._rollback_target(conn, key, current, to)
            if current is not None and current.number == row["number"]:
                return current
            conn.execute(
                "UPDATE versions SET status = 'retired' WHERE project = ?"
                " AND status IN ('current', 'previous')",
                (project,),
            )
            conn.execute(
                "UPDATE versions SET status = 'current' WHERE project = ? AND number = ?",
                (project, row["number"]),
            )
            conn.execute(
                "UPDATE versions SET status = 'previous' WHERE project = ? AND number = ("
                " SELECT MAX(number) FROM versions WHERE project = ? AND status = 'retired'"
                " AND artifacts = 1 AND number < ?)",
                (project, project, row["number"]),
            )
            restored = self._version(key, row, status="current")
        log.warning(
            "Project %s: rolled back from %s to %s",
            key,
            current.name if current else None,
            restored.name,
        )
        return restored

    def _rollback_target(
        self, conn: Executor, key: ProjectKey, current: VersionInfo | None, to: str | None
    ) -> Any:
        serving = f"it serves {current.name}" if current else "it has no trained version"
        if to is None:
            row = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions"
                " WHERE project = ? AND status = 'previous'",
                (str(key),),
            ).fetchone()
            if row is None:
                raise NotFound(
                    f"Project {key} has no previous version to roll back to ({serving})."
                )
            return row
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE project = ? AND name = ?"
            " AND artifacts = 1 AND status != 'rejected'",
            (str(key), to),
        ).fetchone()
        if row is None:
            servable = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM versions WHERE project = ? AND artifacts = 1"
                    " AND status != 'rejected' ORDER BY number DESC",
                    (str(key),),
                )
            ]
            raise NotFound(
                f"Project {key} has no version {to!r:.80} to roll back to ({serving}; versions "
                f"with artifacts: {', '.join(servable) or 'none'})."
            )
        return row

    def prune(self, key: ProjectKey, keep: int = 3) -> None:
        """Delete the artifacts of retired versions beyond the newest ``keep`` with artifacts.

        The current and previous versions are never pruned (they count towards ``keep``).
        """
        if keep < 0:
            raise ValueError(f"prune keep must be >= 0, got {keep}")
        trash: list[Path] = []
        pruned: list[str] = []
        with self._db.write(lock=_LOCK) as conn:
            rows = conn.execute(
                "SELECT number, path, status FROM versions WHERE project = ? AND artifacts = 1"
                " ORDER BY number DESC",
                (str(key),),
            ).fetchall()
            for row in rows[keep:]:
                if row["status"] != "retired":
                    continue
                conn.execute(
                    "UPDATE versions SET artifacts = 0 WHERE project = ? AND number = ?",
                    (str(key), row["number"]),
                )
                pruned.append(row["path"])
                path = self.root / row["path"]
                if path.exists():
                    trash.append(self._to_trash(path))
        self._empty(trash)
        if self.artifacts is not None:
            for rel in pruned:
                self.artifacts.delete(rel)
        if trash:
            log.info("Project %s: pruned the artifacts of %d old versions", key, len(trash))

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _demote(conn: Executor, key: ProjectKey) -> None:
        """Before a new current version: current becomes previous, previous retired."""
        for old, new in (("previous", "retired"), ("current", "previous")):
            conn.execute(
                "UPDATE versions SET status = ? WHERE project = ? AND status = ?",
                (new, str(key), old),
            )

    def _current(self, conn: Executor, key: ProjectKey) -> VersionInfo | None:
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE project = ? AND status = 'current'",
            (str(key),),
        ).fetchone()
        return None if row is None else self._version(key, row)

    def _version(self, key: ProjectKey, row: Any, *, status: str | None = None) -> VersionInfo:
        return VersionInfo(
            project=key,
            name=row["name"],
            number=row["number"],
            path=self.root / row["path"],
            created_at=row["created_at"],
            metrics=json.loads(row["metrics"]),
            status=status or row["status"],
        )

    @staticmethod
    def _rel(key: ProjectKey, number: int) -> str:
        return f"projects/{key.slug}/versions/{number}"

    @staticmethod
    def _next_number(conn: Executor, key: ProjectKey) -> int:
        row = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE project = ?", (str(key),)
        ).fetchone()
        return int(row[0])

    def _insert(
        self,
        conn: Executor,
        key: ProjectKey,
        number: int,
        name_prefix: str,
        metrics: Mapping[str, float],
        status: str,
        *,
        rel: str | None = None,
    ) -> VersionInfo:
        if not name_prefix:
            raise ValueError("name_prefix must not be empty")
        rel = rel or self._rel(key, number)
        info = VersionInfo(
            project=key,
            name=f"{name_prefix}-{number}",
            number=number,
            path=self.root / rel,
            created_at=time.time(),
            metrics=dict(metrics),
            status=status,
        )
        conn.execute(
            "INSERT INTO versions (project, number, name, path, created_at, metrics, status,"
            " artifacts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(key),
                number,
                info.name,
                rel,
                info.created_at,
                _dumps(info.metrics),
                status,
                int(status == "current"),
            ),
        )
        return info

    def _same_fs(self, path: Path) -> bool:
        return os.stat(path).st_dev == os.stat(self.root / "tmp").st_dev

    def _copy_in(self, key: ProjectKey, workdir: Path) -> Path:
        staged = new_work_dir(self.root / "tmp", key)
        shutil.copytree(workdir, staged, dirs_exist_ok=True)
        return staged

    def _to_trash(self, path: Path) -> Path:
        return to_trash(self.root / "tmp", path)

    @staticmethod
    def _empty(trash: list[Path]) -> None:
        empty(trash)

    def _cleanup(self, tmp_max_age: float) -> None:
        """Remove what crashes left: trash, stale work dirs, version dirs no row references."""
        trash = leftovers(self.root / "tmp", tmp_max_age)
        # Under the write lock: a promotion renames and commits while holding it, so a
        # directory without a committed row cannot be one that is being promoted right now.
        with self._db.write(lock=_LOCK) as conn:
            kept = {r[0] for r in conn.execute("SELECT path FROM versions WHERE artifacts = 1")}
            # artifacts/: copies of shared versions (PRELABEL_ARTIFACTS_URL) on this machine.
            dirs = [*(self.root / "projects").glob("*/versions/*")]
            dirs += (self.root / "projects").glob("*/artifacts/*")
            for path in dirs:
                if path.relative_to(self.root).as_posix() not in kept:
                    log.warning("Removing %s: no version refers to it (left by a crash)", path)
                    trash.append(self._to_trash(path))
        self._empty(trash)
