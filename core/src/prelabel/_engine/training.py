"""The default training policy: champion/challenger with a gate on held-out tasks.

:class:`GatedTraining` (see :mod:`prelabel._engine.policy` for the seam) gathers the project's annotations, hold out a share,
  ``fit`` a challenger, score it and the champion on the held-out tasks with the backend's
  :meth:`~prelabel.Backend.evaluate`, and promote the challenger only if it is not worse.
* ``prelabel.compat`` supplies its own policy: SDK models keep their own data and versions.

Jobs run in a job runner (a background thread, or a process per job started by
``prelabel worker``), never on a request path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prelabel._engine.jobs import Job
from prelabel._engine.policy import ServedVersion, TrainingPolicy
from prelabel._engine.store import ProjectState
from prelabel._engine.trainingdata import usable_tasks
from prelabel.annotations import hash_bucket
from prelabel.backend import Evaluation
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError, MediaError, PrelabelError
from prelabel.project import ProjectKey

__all__ = ["CHANGES", "GatedTraining", "split_holdout"]

#: The per-project counter of annotation changes since the last training started.
CHANGES = "changes_since_training"

log = logging.getLogger(__name__)


def split_holdout(
    tasks: Sequence[dict[str, Any]], fraction: float, minimum: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split annotated tasks into (train, holdout), deterministically by task id.

    Returns no holdout while the project is too small for one (fewer than
    ``minimum / fraction`` tasks, or fewer than ``minimum`` landing in the held-out share):
    with that little data a gate would only measure noise, and every annotation is better
    spent on training. Deciding by the count, not by where the hashes fall, keeps a
    10-task project from losing half its examples to an unlucky draw.
    """
    if fraction <= 0.0 or len(tasks) * fraction < minimum:
        return list(tasks), []
    held = [hash_bucket("holdout", t.get("id")) < fraction for t in tasks]
    if sum(held) < minimum:
        return list(tasks), []
    train = [t for t, h in zip(tasks, held, strict=True) if not h]
    holdout = [t for t, h in zip(tasks, held, strict=True) if h]
    return train, holdout


def _unreadable_tasks(
    tasks: Sequence[Mapping[str, Any]], failures: Mapping[Any, str]
) -> list[tuple[Any, str]]:
    """``(task id, why)`` of the ``tasks`` whose media could not be fetched, in task order."""
    return [(t.get("id"), failures[t.get("id")]) for t in tasks if t.get("id") in failures]


def _unreadable_summary(unreadable: Sequence[tuple[Any, str]]) -> dict[str, Any]:
    """What a job's result says of tasks it could not load (nothing when it loaded them all)."""
    if not unreadable:
        return {}
    task, why = unreadable[-1]
    return {"unreadable_tasks": len(unreadable), "unreadable_error": f"task {task}: {why}"}


class GatedTraining(TrainingPolicy):
    """Champion/challenger: a new version is promoted only if held-out tasks say it is no worse."""

    def served_version(self, state: ProjectState) -> ServedVersion:
        if state.current is None:
            return ServedVersion(self.runtime.backend.version, None)
        return ServedVersion(state.current.name, self.runtime.store.local_path(state.current))

    def due(self, key: ProjectKey, changes: int) -> bool:
        """Train after every ``train_every`` changes, the first time at ``train_min_annotations``."""
        if changes <= 0:
            return False
        store, settings = self.runtime.store, self.runtime.settings
        since = store.bump(key, CHANGES, changes)
        if store.versions(key):
            return since >= settings.train_every
        return store.annotation_count(key) >= settings.train_min_annotations

    def start_training_payload(self) -> dict[str, Any]:
        return {"pull": True}

    def run(self, job: Job) -> dict[str, Any]:
        key, store = job.project, self.runtime.store
        state = store.project(key)
        if not state.label_config:
            raise ConfigError(
                f"Project {key} has no labeling config yet: connect this backend to the project "
                "in Label Studio (which calls /setup) before training."
            )
        # Changes from now on count toward the next training.
        store.reset(key, CHANGES)
        if job.payload.get("pull"):
            self._pull_annotations(state)
        config = LabelConfig.cached(state.label_config)
        tasks, skipped = usable_tasks(key, store.annotated_tasks(key), config)
        outcome = self._train(state, config, tasks, job.reason)
        return {**outcome, "skipped": skipped} if skipped else outcome

    def _train(
        self, state: ProjectState, config: LabelConfig, tasks: list[dict[str, Any]], reason: str
    ) -> dict[str, Any]:
        runtime, key = self.runtime, state.key
        store, settings = runtime.store, runtime.settings
        if not tasks:
            return {"trained": False, "reason": "no annotated tasks"}
        train, holdout = split_holdout(tasks, settings.holdout_fraction, settings.min_holdout)
        champion = state.current
        with store.new_version_dir(key) as workdir:
            fit_job = runtime.train_job(
                state,
                label_config=config,
                tasks=train,
                holdout=holdout,
                workdir=workdir,
                reason=reason,
            )
            result = runtime.backend.fit(fit_job)
            unreadable = _unreadable_tasks(train, fit_job.media.fetch_failures())
            if unreadable and len(unreadable) == len(train):
                raise MediaError(
                    f"None of the {len(train)} annotated tasks could be loaded, so there is "
                    f"nothing to train on; task {unreadable[-1][0]}: {unreadable[-1][1]}"
                )
            if result is None:
                return {
                    "trained": False,
                    "reason": "the backend had nothing to train on",
                    "tasks": len(train),
                    **_unreadable_summary(unreadable),
                }
            metrics = {k: float(v) for k, v in result.metrics.items()}
            metrics.update(train_tasks=float(len(train)), holdout_tasks=float(len(holdout)))
            prefix = runtime.backend.name
            if holdout:
                challenger = self._evaluate(state, config, holdout, workdir, "challenger")
                defender = self._evaluate(
                    state,
                    config,
                    holdout,
                    store.local_path(champion) if champion else None,
                    "champion",
                )
                metric = next((e.metric for e in (challenger, defender) if e), "score")
                new, old = (e.value if e is not None else 0.0 for e in (challenger, defender))
                metrics.update({f"holdout_{metric}": new, f"champion_{metric}": old})
                if new < old - settings.gate_tolerance:
                    rejected = store.record_rejected(key, name_prefix=prefix, metrics=metrics)
                    log.info(
                        "Project %s: challenger %s scored %.3f < champion %.3f; not promoted.",
                        key,
                        rejected.name,
                        new,
                        old,
                    )
                    return {
                        "trained": True,
                        "promoted": False,
                        "version": rejected.name,
                        "metrics": metrics,
                        **_unreadable_summary(unreadable),
                    }
            version = store.promote(key, workdir, name_prefix=prefix, metrics=metrics)
        store.prune(key)
        if settings.repredict and runtime.ls_api() is not None:
            # Scores of the new version for every unlabeled task, then LS sorts by them.
            runtime.queue.enqueue(key, "predict", reason="PROMOTED", payload={"select": True})
        log.info("Project %s: promoted %s (%s).", key, version.name, metrics)
        return {
            "trained": True,
            "promoted": True,
            "version": version.name,
            "metrics": metrics,
            **_unreadable_summary(unreadable),
        }

    def _evaluate(
        self,
        state: ProjectState,
        config: LabelConfig,
        tasks: Sequence[dict[str, Any]],
        model_dir: Path | None,
        role: str,
    ) -> Evaluation | None:
        """The backend's evaluation of ``model_dir`` on ``tasks``; ``None`` (scores 0) if it raised."""
        ctx = self.runtime.context(
            state, label_config=config, served=ServedVersion(role, model_dir)
        )
        try:
            return self.runtime.backend.evaluate(tasks, ctx)
        except Exception:
            log.exception("Evaluating the %s on held-out tasks failed; it scores 0.", role)
            return None

    def _pull_annotations(self, state: ProjectState) -> None:
        store, key = self.runtime.store, state.key
        client = self.runtime.client_for(state)
        if client is None:
            if store.annotation_count(key):
                log.warning(
                    "Start Training for project %s: LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY are not "
                    "set, so training uses the annotations received by webhook only.",
                    key,
                )
                return
            raise ConfigError(
                "Start Training needs the project's annotations from Label Studio: set "
                "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (a personal access token) for this backend."
            )
        try:
            tasks = client.export_annotated_tasks(key.id)
        except PrelabelError:
            if store.annotation_count(key):
                log.exception("Export from Label Studio failed; training on cached annotations.")
                return
            raise
        store.replace_annotations(key, tasks)
