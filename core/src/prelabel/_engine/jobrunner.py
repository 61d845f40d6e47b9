"""The loop that claims jobs from a :class:`~prelabel._engine.jobs.JobQueue` and runs them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.liveness import new_worker_id

__all__ = ["JobError", "JobInterrupted", "JobRunner"]

log = logging.getLogger(__name__)


class JobError(Exception):
    """A handler's failure whose message is already the job's error text (no type prefix)."""


class JobInterrupted(Exception):
    """The handler was stopped by a shutdown: the job goes back to the queue, not failed."""


class JobRunner:
    """Polls the queue and runs jobs with a handler; runs in a daemon thread or as the main
    loop of a worker process.

    A handler exception fails the job with ``"ExcType: message"`` (traceback to the log) and
    the runner goes on. While a handler runs, a thread heartbeats every ``heartbeat_interval``.
    """

    def __init__(
        self,
        queue: JobQueue,
        handler: Callable[[Job], Mapping[str, Any]],
        *,
        worker_id: str | None = None,
        poll_interval: float = 0.2,
        heartbeat_interval: float | None = None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.worker_id = worker_id or new_worker_id()
        self.poll_interval = poll_interval
        self.heartbeat_interval = (
            heartbeat_interval
            if heartbeat_interval is not None
            else min(30.0, queue.stale_after / 4)
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        queue.add_listener(lambda _job, _created: self.wake())

    def start(self) -> None:
        """Run :meth:`run_forever` in a daemon thread (no-op if already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name=f"prelabel-jobs-{self.worker_id}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether :meth:`start`'s thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; wait up to ``timeout`` for the running job to end."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Its job keeps running; if the process exits, it goes stale and is requeued.
                log.warning("Job runner %s still busy after %.0f s", self.worker_id, timeout)
            self._thread = None

    def run_forever(self) -> None:
        """Claim and run jobs until :meth:`stop`; sleeps ``poll_interval`` when idle."""
        log.info("Job runner %s started", self.worker_id)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                job = self.run_once()
            except Exception:
                # The database was unavailable (locked too long, disk full): retry later.
                log.exception("Job runner %s could not poll the queue", self.worker_id)
                job = None
            if job is None:
                self._wake.wait(self.poll_interval)
        log.info("Job runner %s stopped", self.worker_id)

    def run_once(self) -> Job | None:
        """Claim one job and run it; returns the finished job, or ``None`` if none was ready."""
        job = self.queue.claim(self.worker_id)
        if job is None:
            return None
        return self.execute(job)

    def execute(self, job: Job) -> Job | None:
        """Run a job this runner claimed, heartbeating it, and record how it ended.

        Returns the finished job; ``None`` when a shutdown interrupted it (back to the queue).
        """
        log.info("Job %s started (%s) by %s", job.id, job.reason, self.worker_id)
        done = threading.Event()
        beater = threading.Thread(
            target=self._beat, args=(job.id, done), name=f"heartbeat-{job.id}", daemon=True
        )
        beater.start()
        result: Mapping[str, Any] = {}
        error = None
        interrupted = False
        try:
            result = self.handler(job) or {}
        except JobInterrupted:
            interrupted = True
        except JobError as exc:
            log.error("Job %s failed: %s", job.id, exc)
            error = str(exc)
        except Exception as exc:
            log.exception("Job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            done.set()
            beater.join()
        if interrupted:
            log.warning("Job %s interrupted by a shutdown; back to the queue", job.id)
            self.queue.requeue_lost([self.worker_id], "was stopped")
            return None
        finished = self.queue.finish(job.id, result=result, error=error, worker_id=self.worker_id)
        log.info(
            "Job %s %s in %.1f s",
            job.id,
            finished.status,
            time.time() - (job.started_at or job.created_at),
        )
        return finished

    def wake(self) -> None:
        """Make the loop poll now instead of at the end of its sleep."""
        self._wake.set()

    def _beat(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_interval):
            try:
                if not self.queue.heartbeat(job_id, worker_id=self.worker_id):
                    log.warning("Job %s was taken from %s (presumed dead)", job_id, self.worker_id)
                    return
            except Exception:
                # A missed beat is harmless unless they go on for stale_after.
                log.exception("Job %s: heartbeat failed", job_id)
