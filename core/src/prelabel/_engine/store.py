"""Per-project state: what ``/setup`` told us, model versions, the training-data cache.

Layout under the model directory (``PRELABEL_MODEL_DIR``)::

    prelabel.db                            SQLite (WAL), shared with the job queue; unused
                                           when PRELABEL_DATABASE_URL names PostgreSQL
    projects/<slug>/versions/<number>/     artifacts of one promoted version (with
                                           PRELABEL_ARTIFACTS_URL: a cache of them)
    tmp/                                   work dirs of trainings in progress, trash being deleted

Projects are keyed by ``str(ProjectKey)`` (``"12.1795807427"``), so a project recreated after a
Label Studio database reset (same id, new generation) starts afresh.

Every method is safe from several threads and processes at once. Nothing is cached in memory:
``current_version`` is one indexed SELECT, so a version promoted by one gunicorn worker is
served by every worker from its next request. Promotion is crash-safe (see
:mod:`prelabel._engine.versions`). ``access_token`` is stored in the database in clear text (LS
sends it on every ``/setup``); keep the model directory private.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prelabel._engine.annotation_cache import SCHEMA as _CACHE_SCHEMA
from prelabel._engine.annotation_cache import AnnotationCache
from prelabel._engine.artifacts import ArtifactStore
from prelabel._engine.engines import open_database
from prelabel._engine.versions import SCHEMA as _VERSIONS_SCHEMA
from prelabel._engine.versions import VersionInfo, VersionStore
from prelabel.database import DB_NAME, Database
from prelabel.project import ProjectKey

__all__ = ["DB_NAME", "ProjectState", "ProjectStore", "VersionInfo"]

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS projects (project TEXT PRIMARY KEY,"
        " extra_params TEXT NOT NULL, hostname TEXT, access_token TEXT, label_config TEXT,"
        " updated_at REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS counters (project TEXT NOT NULL, name TEXT NOT NULL,"
        " value INTEGER NOT NULL, PRIMARY KEY (project, name))",
        *_VERSIONS_SCHEMA,
        *_CACHE_SCHEMA,
    ),
)


@dataclass(frozen=True)
class ProjectState:
    """What the store knows about a project (defaults for one it has never seen)."""

    key: ProjectKey
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    hostname: str | None = None
    #: Secret: left out of ``repr`` so it never reaches a log.
    access_token: str | None = field(default=None, repr=False)
    label_config: str | None = None
    current: VersionInfo | None = None


def _dumps(value: Any) -> str:
    # sort_keys: equal settings must give equal text, so remember_setup can skip no-op writes.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class ProjectStore(VersionStore, AnnotationCache):
    """The database + files under ``root``; see the module docstring for layout and guarantees.

    Versions come from :class:`~prelabel._engine.versions.VersionStore`, the training-data cache
    from :class:`~prelabel._engine.annotation_cache.AnnotationCache`.
    """

    def __init__(
        self,
        root: Path,
        *,
        database: Database | Path | str | None = None,
        artifacts: ArtifactStore | None = None,
        tmp_max_age: float = 2 * 86400.0,
    ) -> None:
        """Open (creating if needed) the store and clean up what a crash left behind.

        Args:
            root: the model directory.
            database: the state database (a :class:`Database`, a PostgreSQL URL or a SQLite
                path); by default the SQLite file ``root/prelabel.db``.
            artifacts: shared storage for the versions' files (``PRELABEL_ARTIFACTS_URL``);
                ``root`` then keeps this machine's copies.
            tmp_max_age: work dirs under ``root/tmp`` untouched this many seconds belong to a
                training that died; they are removed at start-up.
        """
        self.root = root
        self.artifacts = artifacts
        for sub in ("projects", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._db = open_database(database if database is not None else self.db_path)
        self._db.migrate("store", _SCHEMA)
        self._cleanup(tmp_max_age)

    @property
    def db_path(self) -> Path:
        """The SQLite file under ``root`` (used unless :attr:`database` is PostgreSQL)."""
        return self.root / DB_NAME

    @property
    def database(self) -> Database:
        """The state database (give it to :class:`prelabel._engine.jobs.JobQueue`)."""
        return self._db

    # -- setup data ------------------------------------------------------------------------

    def project(self, key: ProjectKey) -> ProjectState:
        """Everything known about ``key``; a default state (nothing written) if unknown."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT extra_params, hostname, access_token, label_config FROM projects"
                " WHERE project = ?",
                (str(key),),
            ).fetchone()
            current = self._current(conn, key)
        if row is None:
            return ProjectState(key, current=current)
        return ProjectState(key, json.loads(row[0]), row[1], row[2], row[3], current=current)

    def projects(self) -> list[ProjectKey]:
        """Every project with stored setup data or versions."""
        rows = self._db.execute("SELECT project FROM projects UNION SELECT project FROM versions")
        return [ProjectKey.parse(row[0]) for row in rows]

    def resolve(self, key: ProjectKey) -> ProjectKey:
        """``key``, or for a bare project id the newest generation this store knows of it."""
        if key.generation is not None:
            return key
        row = self._db.execute(
            "SELECT project FROM projects WHERE project = ? OR project LIKE ?"
            " ORDER BY updated_at DESC LIMIT 1",
            (key.id, f"{key.id}.%"),  # ids are digits: nothing to escape
        ).fetchone()
        return ProjectKey.parse(row[0]) if row is not None else key

    def remember_setup(
        self,
        key: ProjectKey,
        *,
        extra_params: Mapping[str, Any],
        hostname: str | None,
        access_token: str | None,
        label_config: str | None,
    ) -> None:
        """Record what ``/setup`` sent; writes only when something changed (LS calls it often).

        ``label_config=None`` keeps the stored config.
        """
        params = _dumps(dict(extra_params))
        conn = self._db
        row = conn.execute(
            "SELECT extra_params, hostname, access_token, label_config FROM projects"
            " WHERE project = ?",
            (str(key),),
        ).fetchone()
        if row is not None and tuple(row) == (
            params,
            hostname,
            access_token,
            label_config if label_config is not None else row[3],
        ):
            return
        # One upsert statement is atomic; a concurrent identical /setup writes the same values.
        conn.execute(
            "INSERT INTO projects (project, extra_params, hostname, access_token, label_config,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project) DO UPDATE SET"
            " extra_params = excluded.extra_params, hostname = excluded.hostname,"
            " access_token = excluded.access_token,"
            " label_config = COALESCE(excluded.label_config, projects.label_config),"
            " updated_at = excluded.updated_at",
            (str(key), params, hostname, access_token, label_config, time.time()),
        )

    def set_label_config(self, key: ProjectKey, xml: str) -> None:
        """Record the project's labeling config (from a webhook); no write if unchanged."""
        conn = self._db
        row = conn.execute(
            "SELECT label_config FROM projects WHERE project = ?", (str(key),)
        ).fetchone()
        if row is not None and row[0] == xml:
            return
        conn.execute(
            "INSERT INTO projects (project, extra_params, label_config, updated_at)"
            " VALUES (?, '{}', ?, ?) ON CONFLICT (project) DO UPDATE SET"
            " label_config = excluded.label_config, updated_at = excluded.updated_at",
            (str(key), xml, time.time()),
        )

    # -- counters --------------------------------------------------------------------------

    def bump(self, key: ProjectKey, name: str, n: int = 1) -> int:
        """Add ``n`` to the project's counter ``name``; returns its new value."""
        row = self._db.execute(
            "INSERT INTO counters (project, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT (project, name) DO UPDATE SET value = counters.value + excluded.value"
            " RETURNING value",
            (str(key), name, n),
        ).fetchone()
        return int(row[0])

    def reset(self, key: ProjectKey, name: str) -> None:
        """Set the project's counter ``name`` back to 0."""
        self._db.execute(
            "UPDATE counters SET value = 0 WHERE project = ? AND name = ?", (str(key), name)
        )

    def counters(self) -> dict[str, dict[str, int]]:
        """``{str(project key): {counter name: value}}``."""
        out: dict[str, dict[str, int]] = {}
        for row in self._db.execute("SELECT project, name, value FROM counters"):
            out.setdefault(row[0], {})[row[1]] = row[2]
        return out
