"""Where bulk pre-annotation gets its tasks and puts its predictions.

* :class:`LiveProject`: an LS project through its API — tasks listed page by page (the next
  page fetched while the current one is predicted), those already predicted with the version
  (or labelled) passed over, predictions posted in chunks.
* :class:`ExportFile`: an LS JSON export in, an LS import file with predictions out, resumable
  through a journal.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prelabel._engine.bulk import Progress, StoredPrediction
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.errors import ConfigError

__all__ = ["ExportFile", "LiveProject", "has_prediction", "is_labelled"]

#: Predictions per import call: LS 1.23 recounts every task of the project on each call
#: (0.2 s at 1,000 tasks, 0.5 s at 3,000), so small calls would cost more than predicting.
POST_SIZE = 100


def has_prediction(task: Mapping[str, Any], version: str) -> bool:
    """Whether the task already has a prediction of ``version`` (LS's own dedup rule)."""
    predictions = task.get("predictions")
    return isinstance(predictions, list) and any(
        isinstance(p, Mapping) and p.get("model_version") == version for p in predictions
    )


def is_labelled(task: Mapping[str, Any]) -> bool:
    """Whether the task has an annotation that is not a skip (as listed or exported by LS)."""
    annotations = task.get("annotations")
    return bool(task.get("total_annotations") or task.get("is_labeled")) or (
        isinstance(annotations, list)
        and any(isinstance(a, Mapping) and not a.get("was_cancelled") for a in annotations)
    )


class LiveProject:
    """The tasks of an LS project that lack a prediction of ``version``, and where to post.

    ``progress`` learns the project's task count and counts the tasks passed over;
    :attr:`had_version` counts those passed over because they have a prediction of ``version``.
    """

    store_every = POST_SIZE

    def __init__(
        self,
        client: LabelStudioClient,
        project_id: int | str,
        version: str,
        progress: Progress,
        *,
        unlabeled_only: bool,
    ) -> None:
        self.client, self.project_id, self.version = client, project_id, version
        self.progress, self.unlabeled_only = progress, unlabeled_only
        self.had_version = 0

    def wanted(self, task: Mapping[str, Any]) -> bool:
        """Whether ``task`` is to be predicted."""
        if has_prediction(task, self.version):
            self.had_version += 1
            return False
        return not (self.unlabeled_only and is_labelled(task))

    def tasks(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of tasks to predict; the next page is read while this one is predicted."""
        pages = ls_projects.iter_tasks(self.client, self.project_id)
        with ThreadPoolExecutor(1, thread_name_prefix="bulk-list") as reader:
            ahead = reader.submit(next, pages, None)
            while (found := ahead.result()) is not None:
                ahead = reader.submit(next, pages, None)
                page, total = found
                self.progress.total = total if total is not None else self.progress.total
                kept = [t for t in page if self.wanted(t)]
                self.progress.skipped += len(page) - len(kept)
                yield kept

    def post(self, predictions: list[StoredPrediction]) -> int:
        """Store predictions in LS; returns how many it stored."""
        return ls_projects.import_predictions(self.client, self.project_id, predictions)


class ExportFile:
    """An LS JSON export in, an LS import file with predictions out, resumable.

    Finished tasks are appended to ``<out>.partial.jsonl`` as they complete; a run that finds
    that journal skips the tasks in it, and the import file is written (atomically) only once
    every task is done, then the journal is removed.
    """

    def __init__(self, source: Path, out: Path) -> None:
        try:
            tasks = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read {source} as a Label Studio JSON export: {exc}") from exc
        if not isinstance(tasks, list) or not all(
            isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks
        ):
            raise ConfigError(
                f"{source} is not a Label Studio JSON export: expected a list of tasks, each with"
                ' a "data" object (export the project as JSON, not JSON-MIN or CSV).'
            )
        self.tasks: list[dict[str, Any]] = [
            {**t, "id": t.get("id", i)} for i, t in enumerate(tasks, 1)
        ]
        self.out = out
        self.journal = out.with_name(out.name + ".partial.jsonl")
        self.done: dict[Any, list[StoredPrediction]] = {}
        if self.journal.exists():
            self._read_journal()
        self._lock = threading.Lock()

    def _read_journal(self) -> None:
        lines = self.journal.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                if number == len(lines):
                    continue  # a line cut short by a crash mid-write: that task is redone
                raise ConfigError(
                    f"{self.journal} line {number} is not JSON: delete the file to start over."
                ) from None
            if row is not None:
                self.done.setdefault(row["task"], []).append(row)

    def pending(self, version: str, *, unlabeled_only: bool = True) -> list[dict[str, Any]]:
        """Tasks not yet in the journal, without a prediction of ``version`` (and without
        annotations, for ``unlabeled_only``)."""
        return [
            t
            for t in self.tasks
            if t["id"] not in self.done
            and not has_prediction(t, version)
            and not (unlabeled_only and is_labelled(t))
        ]

    def append(self, predictions: list[StoredPrediction]) -> int:
        """Journal predictions (the sink of :func:`~prelabel._engine.bulk.predict_in_batches`)."""
        with self._lock, self.journal.open("a", encoding="utf-8") as journal:
            for prediction in predictions:
                journal.write(json.dumps(prediction, ensure_ascii=False) + "\n")
                self.done.setdefault(prediction["task"], []).append(prediction)
            journal.flush()
        return len(predictions)

    def finish(self) -> int:
        """Write the import file: every task with its new predictions; returns the task count.

        A quick export (``GET /api/projects/<id>/export``) lists a task's earlier predictions
        by id only; ids of another project's rows cannot be imported, so only full ones stay.
        """
        rows = []
        for task in self.tasks:
            kept = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
            new = [
                {k: v for k, v in p.items() if k != "task"} for p in self.done.get(task["id"], [])
            ]
            rows.append({**task, "predictions": [*kept, *new]})
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.out)
        self.journal.unlink(missing_ok=True)
        return len(rows)
