"""The training-data cache that webhooks keep current (a base class of ``ProjectStore``).

Annotation events carry the task and the annotation; deletions carry only ids. Keeping the
cache here, rather than re-reading LS on every training run, is what lets ``ANNOTATIONS_DELETED``
and ``TASKS_DELETED`` actually remove training data (the reference SDK never sees deletions).
``START_TRAINING`` replaces the cache wholesale from a full export.

A cancelled (skipped) annotation is kept as a tombstone: stored, but never returned and never
counted. The removal counts returned here are of *training* annotations, so 0 means the
training data did not change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prelabel.database import Connection, Database
from prelabel.errors import BadRequest
from prelabel.project import ProjectKey, is_id

__all__ = ["SCHEMA", "AnnotationCache"]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tasks (project TEXT NOT NULL, task_id INTEGER NOT NULL,"
    " data TEXT NOT NULL, PRIMARY KEY (project, task_id))",
    "CREATE TABLE IF NOT EXISTS annotations (project TEXT NOT NULL,"
    " annotation_id INTEGER NOT NULL, task_id INTEGER NOT NULL, body TEXT NOT NULL,"
    " cancelled INTEGER NOT NULL, PRIMARY KEY (project, annotation_id))",
    "CREATE INDEX IF NOT EXISTS annotations_task ON annotations (project, task_id)",
)

#: (task id, task data or None, annotation id, annotation JSON, cancelled)
_Row = tuple[int, str | None, int, str, int]


def _id(value: Any, what: str) -> int:
    if not is_id(value):
        raise BadRequest(f"{what} must be an integer id below 2**63, got {value!r:.80}")
    return value


def _row(task: Mapping[str, Any], annotation: Any) -> _Row:
    if not isinstance(annotation, Mapping):
        raise BadRequest(f"an annotation must be an object, got {type(annotation).__name__}")
    annotation_id = _id(annotation.get("id"), "annotation 'id'")
    task_id = _id(task.get("id", annotation.get("task")), "task 'id'")
    data = task.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise BadRequest(f"task {task_id}: 'data' must be an object, got {type(data).__name__}")
    return (
        task_id,
        None if data is None else json.dumps(data, separators=(",", ":")),
        annotation_id,
        json.dumps(annotation, separators=(",", ":"), default=str),
        int(bool(annotation.get("was_cancelled"))),
    )


def _write_rows(conn: Connection, project: str, rows: Sequence[_Row]) -> None:
    conn.executemany(
        "INSERT INTO tasks (project, task_id, data) VALUES (?, ?, ?)"
        " ON CONFLICT (project, task_id) DO UPDATE SET data = excluded.data",
        [(project, task_id, data) for task_id, data, *_ in rows if data is not None],
    )
    conn.executemany(
        "INSERT INTO annotations (project, annotation_id, task_id, body, cancelled)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, annotation_id) DO UPDATE SET"
        " task_id = excluded.task_id, body = excluded.body, cancelled = excluded.cancelled",
        [(project, a_id, task_id, body, c) for task_id, _, a_id, body, c in rows],
    )


def _annotations(task: Any) -> list[Any]:
    if not isinstance(task, Mapping):
        raise BadRequest(f"an annotated task must be an object, got {type(task).__name__}")
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise BadRequest(
            f"task {task.get('id')!r:.40}: 'annotations' must be a list, got "
            f"{type(annotations).__name__}"
        )
    return annotations


class AnnotationCache:
    """Annotated tasks per project, in LS export format."""

    _db: Database

    def upsert_annotation(
        self, key: ProjectKey, *, task: Mapping[str, Any], annotation: Mapping[str, Any]
    ) -> None:
        """Store (or replace, by annotation id) one annotation and its task's data.

        A task without ``data`` (older LS sent none) keeps the data stored before; a task whose
        data was never stored is left out of :meth:`annotated_tasks`.
        """
        self.upsert_annotations(key, [(task, annotation)])

    def upsert_annotations(
        self, key: ProjectKey, items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> int:
        """:meth:`upsert_annotation` for many ``(task, annotation)`` pairs in one transaction.

        Returns how many pairs were stored. Nothing is stored if any pair is malformed.

        Raises:
            BadRequest: an annotation or task lacks an integer ``id``, or data is not an object.
        """
        rows = [_row(task, annotation) for task, annotation in items]
        with self._db.write(lock=None) as conn:
            _write_rows(conn, str(key), rows)
        return len(rows)

    def delete_annotations(self, key: ProjectKey, annotation_ids: Iterable[int]) -> int:
        """Forget annotations by id; returns how many training annotations went."""
        params = [(str(key), int(i)) for i in annotation_ids]
        with self._db.write(lock=None) as conn:
            removed = conn.executemany(
                "DELETE FROM annotations WHERE project = ? AND annotation_id = ? AND cancelled = 0",
                params,
            ).rowcount
            conn.executemany(
                "DELETE FROM annotations WHERE project = ? AND annotation_id = ?", params
            )
        return max(removed, 0)

    def delete_tasks(self, key: ProjectKey, task_ids: Iterable[int]) -> int:
        """Forget tasks and their annotations; returns how many training annotations went."""
        params = [(str(key), int(i)) for i in task_ids]
        with self._db.write(lock=None) as conn:
            removed = conn.executemany(
                "DELETE FROM annotations WHERE project = ? AND task_id = ? AND cancelled = 0",
                params,
            ).rowcount
            conn.executemany("DELETE FROM annotations WHERE project = ? AND task_id = ?", params)
            conn.executemany("DELETE FROM tasks WHERE project = ? AND task_id = ?", params)
        return max(removed, 0)

    def replace_annotations(self, key: ProjectKey, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Replace the project's cache with a full LS export (``[{"id", "data", "annotations"}]``).

        Raises:
            BadRequest: a task or annotation lacks an integer ``id`` (nothing is replaced).
        """
        rows = [_row(task, annotation) for task in tasks for annotation in _annotations(task)]
        project = str(key)
        with self._db.write(lock=None) as conn:
            conn.execute("DELETE FROM annotations WHERE project = ?", (project,))
            conn.execute("DELETE FROM tasks WHERE project = ?", (project,))
            _write_rows(conn, project, rows)

    def annotated_tasks(self, key: ProjectKey) -> list[dict[str, Any]]:
        """Tasks with at least one non-cancelled annotation, by task id, in LS export format."""
        rows = self._db.execute(
            "SELECT t.task_id, t.data, a.body FROM annotations a JOIN tasks t"
            " ON t.project = a.project AND t.task_id = a.task_id"
            " WHERE a.project = ? AND a.cancelled = 0 ORDER BY t.task_id, a.annotation_id",
            (str(key),),
        )
        out: list[dict[str, Any]] = []
        for task_id, data, body in rows:
            if not out or out[-1]["id"] != task_id:
                out.append({"id": task_id, "data": json.loads(data), "annotations": []})
            out[-1]["annotations"].append(json.loads(body))
        return out

    def annotation_count(self, key: ProjectKey) -> int:
        """How many annotations :meth:`annotated_tasks` would return."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM annotations a JOIN tasks t"
            " ON t.project = a.project AND t.task_id = a.task_id"
            " WHERE a.project = ? AND a.cancelled = 0",
            (str(key),),
        ).fetchone()
        return int(row[0])
