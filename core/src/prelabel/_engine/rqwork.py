"""The RQ job function: what a ``prelabel worker``'s work-horse runs for one job row.

Separate from :mod:`prelabel._engine.rqjobs` (which the runtime imports to deliver jobs)
because it builds a runtime itself.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from rq import get_current_job

from prelabel._engine.engines import database_target, open_database
from prelabel._engine.jobrunner import JobRunner
from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.rqjobs import RqDelivery
from prelabel._engine.runtime import build_runtime
from prelabel.settings import CoreSettings, load_settings

__all__ = ["perform"]

log = logging.getLogger(__name__)


def perform(job_id: str) -> str:
    """The RQ job function: claim the row, run it in this work-horse, hand the project on.

    A failure of the job itself (the backend cannot load, training raised) is recorded on its
    row, and RQ sees success and does not retry it; only an infrastructure error (the
    database unreachable while claiming) reaches RQ, which retries.
    """
    settings = load_settings(CoreSettings)
    assert settings.redis_url is not None and settings.backend is not None  # run_rq_worker's
    queue = JobQueue(
        open_database(database_target(settings.database_url, settings.model_dir)),
        stale_after=settings.job_stale_seconds,
    )
    current = get_current_job()
    delivery = current.id if current is not None else job_id
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{delivery[:8]}"
    job = queue.claim_delivered(job_id, worker_id, delivery)
    if job is None:
        log.info("Job %s: nothing to run for delivery %s", job_id, delivery)
        return "skipped"

    def handle(job: Job) -> dict[str, Any]:
        runtime = build_runtime(settings=settings)
        runtime.backend.load()
        try:
            return runtime.run_job(job)
        finally:
            runtime.acceptance.flush()

    finished = JobRunner(queue, handle, worker_id=worker_id).execute(job)
    RqDelivery(settings.redis_url, settings.backend, queue).hand_on(job.project)
    return finished.status if finished is not None else "interrupted"
