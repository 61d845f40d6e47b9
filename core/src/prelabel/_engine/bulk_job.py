"""The ``predict`` job: bulk pre-annotation of a project in LS, in the background.

Queued by ``POST /projects/<project>/predict``, by a promotion (re-predicting with the new
version) and by ``TASKS_CREATED`` with ``PRELABEL_PREDICT_NEW_TASKS``; its progress shows in
``/jobs``.
"""

from __future__ import annotations

from typing import Any

from prelabel._engine.bulk import Progress, predict_in_batches
from prelabel._engine.bulk_sources import LiveProject
from prelabel._engine.jobs import Job
from prelabel._engine.store import ProjectState
from prelabel._ls import projects as ls_projects
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError

__all__ = ["run_predict_job"]


def run_predict_job(runtime: Any, job: Job) -> dict[str, Any]:
    """A ``predict`` job: pre-annotate the project's tasks in LS with the served version.

    Payload: ``unlabeled_only`` (default true), ``select`` (point the project's prediction
    selector at the version when done, so scores sort in LS).
    """
    state: ProjectState = runtime.store.project(job.project)
    if not state.label_config:
        raise ConfigError(
            f"Project {job.project} has no labeling config yet: connect this backend to it in "
            "Label Studio (which calls /setup) first."
        )
    client = runtime.client_for(state)
    if client is None:
        raise ConfigError(
            "Bulk prediction posts to Label Studio's API: set LABEL_STUDIO_URL and "
            "LABEL_STUDIO_API_KEY (a personal access token) for this backend."
        )
    config = LabelConfig.cached(state.label_config)
    ctx = runtime.context(state, label_config=config)
    # A backend that cannot predict says why now, instead of posting empty predictions.
    runtime.check_project(job.project, config, ctx.settings, source="predict")
    progress = Progress()
    source = LiveProject(
        client,
        job.project.id,
        ctx.model_version,
        progress,
        unlabeled_only=bool(job.payload.get("unlabeled_only", True)),
    )
    hints = runtime.backend.bulk
    predict_in_batches(
        lambda batch: runtime.runner.run(batch, ctx),
        source.tasks(),
        source.post,
        batch_size=hints.batch_size,
        concurrency=hints.concurrency,
        store_every=source.store_every,
        progress=progress,
        on_progress=lambda p: runtime.queue.report(job.id, p.as_dict()),
    )
    result: dict[str, Any] = {"version": ctx.model_version, **progress.as_dict()}
    if job.payload.get("select"):
        # LS refuses a selector naming a version no prediction of the project carries (400
        # "Model version doesn't exist"), e.g. when every task is labelled.
        exists = progress.stored or source.had_version
        result["selected"] = bool(exists) and ls_projects.select_version(
            client, job.project.id, ctx.model_version
        )
    return result
