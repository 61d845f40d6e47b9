"""``prelabel worker``: claims training jobs and runs each in a fresh process.

The worker itself loads no backend, so an idle worker holds no model: each job starts a
child process (:mod:`prelabel._engine.jobprocess`) that loads the backend, trains, writes its
result and exits, giving every byte back. The worker heartbeats the job while the child
runs, finishes it from the child's result, and fails it at once, naming the exit signal, when
the child dies (killed, out of memory). Children die with the worker (``PR_SET_PDEATHSIG``),
and the worker with whoever started it when that asks for it (``prelabel serve``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prelabel._engine.engines import database_target, open_database
from prelabel._engine.jobrunner import JobError, JobInterrupted, JobRunner
from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.liveness import BEAT_SECONDS, WorkerRegistry, new_worker_id
from prelabel.settings import CoreSettings
from prelabel.threads import TRAIN_NICENESS

__all__ = ["ChildJobs", "die_with_parent", "run_worker"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child between fork and exec: get SIGTERM when the parent process dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start_job_process() -> None:
    """In a job's child process before exec: die with the worker, yield the CPU to serving."""
    die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(TRAIN_NICENESS)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code} without a result (see the worker's log)"


class ChildJobs:
    """The job handler of ``prelabel worker``: one child process per job.

    Args:
        backend: the backend name the child serves (``PRELABEL_BACKEND``).
        environ: the child's environment; by default this process's.
    """

    def __init__(self, backend: str, environ: Mapping[str, str] | None = None) -> None:
        self.backend = backend
        self.environ = dict(environ if environ is not None else os.environ)
        self._current: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="prelabel-job-") as tmp:
            out = Path(tmp) / "result.json"
            command = [sys.executable, "-m", "prelabel._engine.jobprocess", job.id, str(out)]
            env = {**self.environ, "PRELABEL_BACKEND": self.backend}
            with self._lock:
                self._current = subprocess.Popen(command, env=env, preexec_fn=_start_job_process)
            code = self._current.wait()
            with self._lock:
                self._current = None
            if self._stopping and not out.is_file():
                raise JobInterrupted(job.id)
            if not out.is_file():
                raise JobError(f"The training process for job {job.id} {_describe_exit(code)}.")
            answer = json.loads(out.read_text())
        if "error" in answer:
            raise JobError(str(answer["error"]))
        result: dict[str, Any] = answer.get("result") or {}
        return result

    def terminate(self) -> None:
        """Stop the running child, if any (the worker is shutting down)."""
        with self._lock:
            self._stopping = True
            if self._current is not None and self._current.poll() is None:
                self._current.terminate()


def run_worker(backend: str, settings: CoreSettings) -> None:
    """Work off the queue until SIGTERM/SIGINT (an RQ worker with ``PRELABEL_REDIS_URL``).

    Jobs left running by dead workers of this host are requeued at start; on a signal the
    running job's child is stopped and its job goes back to the queue.
    """
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(database_target(settings.database_url, settings.model_dir))
    queue = JobQueue(database, stale_after=settings.job_stale_seconds)
    if settings.redis_url:
        from prelabel._engine.rqjobs import run_rq_worker

        run_rq_worker(backend, settings.redis_url, queue, settings.job_stale_seconds)
        return
    registry = WorkerRegistry(database)
    dead = registry.dead_on_this_host()
    if dead:
        recovered = queue.requeue_lost(dead, "is gone (its process exited)")
        log.warning("Recovered %d job(s) of %d dead worker(s).", recovered, len(dead))
        for worker_id in dead:
            registry.forget(worker_id)
    registry.prune(older_than=86400.0)
    worker_id = new_worker_id()
    handler = ChildJobs(backend)
    runner = JobRunner(queue, handler, worker_id=worker_id, poll_interval=0.5)
    stopping = threading.Event()

    def beat() -> None:
        while not stopping.wait(BEAT_SECONDS):
            try:
                registry.beat(worker_id)
            except Exception:
                log.exception("Worker %s: could not record its heartbeat", worker_id)

    def stop(signum: int, _frame: object) -> None:
        log.info("Worker %s: %s, stopping", worker_id, signal.Signals(signum).name)
        stopping.set()
        runner.stop(timeout=0)
        handler.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    registry.beat(worker_id)
    threading.Thread(target=beat, name="prelabel-worker-beat", daemon=True).start()
    try:
        runner.run_forever()
    finally:
        stopping.set()
        registry.forget(worker_id)
