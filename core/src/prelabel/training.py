"""The training job: gather annotations, fit a challenger, gate it, promote it.

Runs in the job runner (a background thread or ``prelabel worker``), never on a request path.
Promotion is gated: the challenger replaces the served version only if its score on held-out
annotated tasks (:meth:`Backend.evaluate <prelabel.Backend.evaluate>`: agreement with the
annotations unless the backend measures something better, such as mAP) is at least the
champion's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from prelabel.annotations import hash_bucket
from prelabel.backend import Backend, Context, Evaluation, TrainJob
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError, PrelabelError
from prelabel.jobs import Job
from prelabel.lsclient import LabelStudioClient
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import BackendSettings, CoreSettings
from prelabel.store import ProjectState, ProjectStore

__all__ = ["Trainer", "split_holdout"]

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

    def bucket(task: Mapping[str, Any]) -> float:
        return hash_bucket("holdout", task.get("id"))

    holdout = [t for t in tasks if bucket(t) < fraction]
    if len(holdout) < minimum:
        return list(tasks), []
    train = [t for t in tasks if bucket(t) >= fraction]
    return train, holdout


class Trainer:
    """Handles ``train`` jobs for one backend."""

    def __init__(
        self,
        backend: Backend,
        settings: CoreSettings,
        store: ProjectStore,
        *,
        media_for: Callable[[ProjectState], MediaResolver],
        client_for: Callable[[ProjectState], LabelStudioClient | None],
        settings_for: Callable[[Mapping[str, Any]], BackendSettings],
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.store = store
        self.media_for = media_for
        self.client_for = client_for
        self.settings_for = settings_for

    def __call__(self, job: Job) -> dict[str, Any]:
        """Run one job; the returned dict becomes the job's ``result``."""
        key = job.project
        state = self.store.project(key)
        if not state.label_config:
            raise ConfigError(
                f"Project {key} has no labeling config yet: connect this backend to the project "
                "in Label Studio (which calls /setup) before training."
            )
        if self.backend.trains_itself:
            return self._train_itself(job, LabelConfig.cached(state.label_config), state)
        if job.payload.get("pull"):
            self._pull_annotations(key, state)
        tasks = self.store.annotated_tasks(key)
        if not tasks:
            return {"trained": False, "reason": "no annotated tasks"}
        train, holdout = split_holdout(
            tasks, self.settings.holdout_fraction, self.settings.min_holdout
        )
        config = LabelConfig.cached(state.label_config)
        backend_settings = self.settings_for(state.extra_params)
        media = self.media_for(state)
        champion = state.current
        with self.store.new_version_dir(key) as workdir:
            result = self.backend.fit(
                TrainJob(
                    project=key,
                    label_config=config,
                    tasks=train,
                    workdir=workdir,
                    base_dir=champion.path if champion else None,
                    settings=backend_settings,
                    media=media,
                    reason=job.reason,
                )
            )
            if result is None:
                return {
                    "trained": False,
                    "reason": "the backend had nothing to train on",
                    "tasks": len(train),
                }
            metrics = {k: float(v) for k, v in result.metrics.items()}
            metrics.update(train_tasks=float(len(train)), holdout_tasks=float(len(holdout)))
            prefix = self.backend.name
            if holdout:
                evaluate = partial(
                    self.evaluate,
                    holdout,
                    key=key,
                    config=config,
                    settings=backend_settings,
                    media=media,
                )
                scored = (
                    evaluate(model_dir=workdir, version="challenger"),
                    evaluate(model_dir=champion.path if champion else None, version="champion"),
                )
                metric = next((e.metric for e in scored if e is not None), "score")
                challenger, champion_score = (e.value if e is not None else 0.0 for e in scored)
                metrics.update(
                    {f"holdout_{metric}": challenger, f"champion_{metric}": champion_score}
                )
                if challenger < champion_score:
                    rejected = self.store.record_rejected(key, name_prefix=prefix, metrics=metrics)
                    log.info(
                        "Project %s: challenger %s scored %.3f < champion %.3f; not promoted.",
                        key,
                        rejected.name,
                        challenger,
                        champion_score,
                    )
                    return {
                        "trained": True,
                        "promoted": False,
                        "version": rejected.name,
                        "metrics": metrics,
                    }
            version = self.store.promote(key, workdir, name_prefix=prefix, metrics=metrics)
        self.store.prune(key)
        log.info("Project %s: promoted %s (%s).", key, version.name, metrics)
        return {"trained": True, "promoted": True, "version": version.name, "metrics": metrics}

    def evaluate(
        self,
        tasks: Sequence[dict[str, Any]],
        *,
        key: ProjectKey,
        config: LabelConfig,
        settings: BackendSettings,
        media: MediaResolver,
        model_dir: Path | None,
        version: str,
    ) -> Evaluation | None:
        """The backend's :meth:`~prelabel.Backend.evaluate` of ``model_dir`` on ``tasks``.

        ``None`` when it raised: the version then scores 0.
        """
        ctx = Context(
            project=key,
            label_config=config,
            model_version=version,
            model_dir=model_dir,
            settings=settings,
            extra_params={},
            media=media,
        )
        try:
            return self.backend.evaluate(tasks, ctx)
        except Exception:
            log.exception("Evaluating %s on held-out tasks failed; it scores 0.", version)
            return None

    def _train_itself(self, job: Job, config: LabelConfig, state: ProjectState) -> dict[str, Any]:
        """A backend with its own data and versions: one ``fit`` call, no gate, no promotion."""
        with self.store.new_version_dir(job.project) as workdir:
            result = self.backend.fit(
                TrainJob(
                    project=job.project,
                    label_config=config,
                    tasks=[],
                    workdir=workdir,
                    base_dir=None,
                    settings=self.settings_for(state.extra_params),
                    media=self.media_for(state),
                    reason=job.reason,
                )
            )
        if result is None:
            return {"trained": False}
        version = self.backend.project_version(job.project, state.label_config, state.extra_params)
        return {
            "trained": True,
            "version": version,
            "metrics": dict(result.metrics),
            **result.details,
        }

    def _pull_annotations(self, key: ProjectKey, state: ProjectState) -> None:
        client = self.client_for(state)
        if client is None:
            if self.store.annotation_count(key):
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
            if self.store.annotation_count(key):
                log.exception("Export from Label Studio failed; training on cached annotations.")
                return
            raise
        self.store.replace_annotations(key, tasks)
