"""Jobs delivered through RQ (``PRELABEL_REDIS_URL``): ``prelabel worker``s on any machine.

The database's job rows stay the one record of every job: coalescing, the one-running-job-
per-project rule, progress, results and ``/jobs`` work exactly as without Redis. RQ only
*delivers*: each new row is announced by an RQ job ``perform(job_id)`` on the queue
``prelabel-<backend>``, and whichever worker dequeues it claims the row
(:meth:`~prelabel._engine.jobs.JobQueue.claim_delivered`) and runs it
(:func:`prelabel._engine.rqwork.perform`). Why this split:

* RQ has no notion of "one at a time per project" or of merging requests; the database has,
  in one transaction, across machines. A delivery for a project that is busy does nothing,
  and the job that finishes hands the project's next queued job on (:meth:`RqDelivery.hand_on`).
* A worker that dies is RQ's business: a work-horse killed mid-job fails its RQ job, an
  abandoned one (the whole worker gone, its heartbeat expired) is found by another worker's
  maintenance, and RQ's ``Retry`` delivers it again; the new delivery takes the row over.
  After ``max_attempts`` deliveries the row fails (a job that kills every worker must stop).
* What RQ cannot know is swept by every worker (:meth:`RqDelivery.sweep`): a row whose
  announcement was lost (Redis was down when it was stored, or lost its data) is announced
  again, and a row left running by a lost RQ job goes stale and back to the queue, by the
  same rule as without Redis (``PRELABEL_JOB_STALE_SECONDS``).

RQ's worker forks a work-horse per job, which is prelabel's own model: the worker process
never loads the backend (an idle worker holds no model); the horse builds a runtime, loads
the backend, runs the job and exits, giving its memory back.
"""

from __future__ import annotations

import logging
import os
import threading

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from rq.job import Job as RqJob
from rq.job import JobStatus as RqStatus

from prelabel._engine.jobs import Job, JobQueue
from prelabel.database import redact
from prelabel.errors import ServiceUnavailable
from prelabel.project import ProjectKey

__all__ = ["PERFORM", "PrelabelWorker", "RqDelivery", "queue_name", "run_rq_worker", "timings"]

log = logging.getLogger(__name__)

#: The RQ job function (a name: RQ imports it in the work-horse).
PERFORM = "prelabel._engine.rqwork.perform"

#: RQ statuses of a delivery that will still reach a worker.
_PENDING = frozenset({RqStatus.QUEUED, RqStatus.STARTED, RqStatus.SCHEDULED, RqStatus.DEFERRED})


def queue_name(backend: str) -> str:
    """The RQ queue of one backend: workers of other backends never see its jobs."""
    return f"prelabel-{backend}"


def timings(stale_seconds: float) -> dict[str, int]:
    """RQ's intervals for ``PRELABEL_JOB_STALE_SECONDS``: a worker silent that long is gone.

    ``monitor``: how often a busy worker heartbeats; ``abandon``: how long a job's heartbeat
    lasts; ``maintenance``: how often a worker looks for abandoned jobs (and sweeps).
    """
    monitor = max(1, int(min(30.0, stale_seconds / 4)))
    return {
        "monitor": monitor,
        "abandon": max(2 * monitor, int(stale_seconds)),
        "maintenance": max(1, int(min(600.0, stale_seconds / 2))),
    }


class RqDelivery:
    """Announces job rows on the backend's RQ queue; see the module docstring."""

    def __init__(self, redis_url: str, backend: str, queue: JobQueue) -> None:
        self.location = redact(redis_url)
        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.rq = Queue(queue_name(backend), connection=self.redis)
        self.queue = queue

    def on_enqueue(self, job: Job, created: bool) -> None:
        """The job queue's listener: announce each new row (a merged one is announced)."""
        if created:
            self.deliver(job)

    def deliver(self, job: Job) -> None:
        """Put an RQ job ``perform(job.id)`` on the queue and record it on the row.

        Raises:
            ServiceUnavailable: Redis cannot be reached; the row stays queued and a worker's
                sweep announces it once Redis is back.
        """
        try:
            delivery = self.rq.enqueue_call(
                PERFORM,
                args=(job.id,),
                timeout=-1,  # training takes what it takes; a dead worker is found by heartbeat
                result_ttl=3600,
                failure_ttl=7 * 86400,
                retry=Retry(max=self.queue.max_attempts - 1),
                description=f"prelabel {job.id}",
            )
        except RedisError as exc:
            raise ServiceUnavailable(
                f"Redis at {self.location} cannot be reached ({type(exc).__name__}: {exc})."
                f" Job {job.id} is stored and starts once Redis is back."
            ) from exc
        self.queue.set_delivery(job.id, delivery.id)

    def hand_on(self, project: ProjectKey) -> None:
        """Announce the project's next queued job (the one that waited for this one)."""
        for job in self.queue.ready(project):
            self.deliver(job)

    def sweep(self) -> int:
        """Re-announce what RQ lost; returns how many jobs were announced again."""
        self.queue.requeue_stale()
        announced = 0
        for job in self.queue.ready():
            if job.delivery is not None and self._pending(job.delivery):
                continue
            log.warning("Job %s: its RQ delivery is gone; announcing it again.", job.id)
            self.deliver(job)
            announced += 1
        return announced

    def workers(self) -> int:
        """How many RQ workers listen on this backend's queue.

        Raises:
            ServiceUnavailable: Redis cannot be reached.
        """
        try:
            return Worker.count(connection=self.redis, queue=self.rq)
        except RedisError as exc:
            raise ServiceUnavailable(
                f"Redis at {self.location} cannot be reached ({type(exc).__name__}: {exc})."
            ) from exc

    def _pending(self, delivery: str) -> bool:
        try:
            status = RqJob.fetch(delivery, connection=self.redis).get_status(refresh=False)
        except Exception:  # NoSuchJobError, or a job hash that expired
            return False
        return status in _PENDING


class PrelabelWorker(Worker):
    """RQ's forking worker, with a job heartbeat that lasts ``abandon`` seconds.

    RQ lets a job's heartbeat last its monitoring interval plus a fixed 60 s; prelabel's
    ``PRELABEL_JOB_STALE_SECONDS`` says how long a silent worker may hold a job instead, as
    it does without Redis. Retrying the abandoned job stays RQ's own mechanism.
    """

    abandon = 600

    def get_heartbeat_ttl(self, job: RqJob, working_time: float = 0.0) -> int:
        return self.abandon


def run_rq_worker(backend: str, redis_url: str, queue: JobQueue, stale_seconds: float) -> None:
    """``prelabel worker`` with ``PRELABEL_REDIS_URL``: an RQ worker plus the sweep."""
    os.environ["PRELABEL_BACKEND"] = backend  # what the work-horses (forks) load
    delivery = RqDelivery(redis_url, backend, queue)
    times = timings(stale_seconds)
    worker = PrelabelWorker(
        [delivery.rq],
        connection=delivery.redis,
        job_monitoring_interval=times["monitor"],
        maintenance_interval=times["maintenance"],
        # An idle worker looks for abandoned jobs between two waits on the queue, and waits
        # worker_ttl - 15 s: wake up once per maintenance interval.
        worker_ttl=times["maintenance"] + 15,
    )
    worker.abandon = times["abandon"]
    stopping = threading.Event()

    def sweep() -> None:
        while True:
            try:
                delivery.sweep()
            except Exception:
                # Redis or the database is down: the next sweep tries again.
                log.exception("Sweeping the job queue failed")
            if stopping.wait(times["maintenance"]):
                return

    threading.Thread(target=sweep, name="prelabel-sweep", daemon=True).start()
    try:
        worker.work(logging_level=logging.getLevelName(log.getEffectiveLevel()))
    finally:
        stopping.set()
