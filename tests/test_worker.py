"""`prelabel worker` for real: a process per job, deaths noticed at once, supervision.

A throwaway backend plugin (a ``.dist-info`` with an entry point on ``PYTHONPATH``) trains
slowly on demand and writes its pid, so the tests can kill the job process or the worker in
the middle of a job, exactly as the OOM killer or an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services import seed_slowfit_project, wait_until

from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.liveness import WorkerRegistry, pid_alive, pid_started_at
from prelabel._engine.store import ProjectStore
from prelabel._engine.supervisor import Supervisor
from prelabel.project import ProjectKey
from prelabel.threads import TRAIN_NICENESS

KEY = ProjectKey("3", 1700000000)


def _store(env: dict[str, str]) -> ProjectStore:
    store = ProjectStore(Path(env["PRELABEL_MODEL_DIR"]))
    seed_slowfit_project(store, KEY)
    return store


def _queue(env: dict[str, str]) -> JobQueue:
    return JobQueue(Path(env["PRELABEL_MODEL_DIR"]) / "prelabel.db")


def _job_pid(control: Path) -> int:
    found = wait_until(lambda: sorted(control.glob("pid-*")))
    assert isinstance(found, list)
    return int(found[-1].name.removeprefix("pid-"))


def _held_job(
    env: dict[str, str], start_worker: Callable[[], subprocess.Popen[bytes]]
) -> tuple[JobQueue, Job, subprocess.Popen[bytes], int]:
    """A worker running a job whose ``fit`` holds until ``SLOWFIT_DIR/hold`` goes; its pid."""
    _store(env)
    queue = _queue(env)
    control = Path(env["SLOWFIT_DIR"])
    (control / "hold").touch()
    worker = start_worker()
    job = queue.enqueue(KEY, reason="test")
    return queue, job, worker, _job_pid(control)


def _finished(queue: JobQueue, job: Job) -> Job:
    done = wait_until(lambda: (j := queue.get(job.id)).status not in ("queued", "running") and j)
    assert isinstance(done, Job)
    return done


def test_each_job_runs_in_its_own_process_and_the_worker_loads_no_model(plugin_env, start_worker):
    store, queue = _store(plugin_env), _queue(plugin_env)
    control = Path(plugin_env["SLOWFIT_DIR"])
    worker = start_worker()
    first = _finished(queue, queue.enqueue(KEY, reason="test"))
    second = _finished(queue, queue.enqueue(KEY, reason="test"))
    assert (first.status, second.status) == ("succeeded", "succeeded"), (first, second)
    assert first.result["promoted"] is True
    pids = {int(p.name.removeprefix("pid-")) for p in control.glob("pid-*")}
    assert len(pids) == 2 and worker.pid not in pids  # a fresh process per job
    assert not any(pid_alive(p) for p in pids)  # each gave its memory back by exiting
    assert store.current_version(KEY) is not None
    registered = WorkerRegistry(store.db_path).workers()
    assert [w.pid for w in registered] == [worker.pid]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert WorkerRegistry(store.db_path).workers() == []  # a clean stop unregisters


def test_a_job_runs_on_the_training_threads_at_a_lower_priority(plugin_env, start_worker):
    plugin_env["PRELABEL_TRAIN_THREADS"] = "3"
    *_, child = _held_job(plugin_env, start_worker)
    seen = json.loads((Path(plugin_env["SLOWFIT_DIR"]) / f"seen-{child}.json").read_text())
    assert seen == {"threads": 3, "nice": min(19, os.nice(0) + TRAIN_NICENESS)}


def test_a_killed_job_process_fails_its_job_at_once_naming_the_signal(plugin_env, start_worker):
    queue, job, _, child = _held_job(plugin_env, start_worker)
    os.kill(child, signal.SIGKILL)
    started = time.monotonic()
    done = _finished(queue, job)
    assert time.monotonic() - started < 10  # not after PRELABEL_JOB_STALE_SECONDS (600 s)
    assert done.status == "failed"
    assert "was killed by SIGKILL (out of memory?)" in (done.error or "")


def test_a_dead_workers_job_is_recovered_at_once_by_the_next_worker(plugin_env, start_worker):
    queue, job, worker, child = _held_job(plugin_env, start_worker)
    worker.kill()  # kill -9: no clean-up runs in the worker
    worker.wait()
    wait_until(lambda: not pid_alive(child), timeout=10)  # the job process died with its worker
    assert queue.get(job.id).status == "running"  # what a restart finds
    (Path(plugin_env["SLOWFIT_DIR"]) / "hold").unlink()
    start_worker()
    done = _finished(queue, job)
    assert done.status == "succeeded" and done.attempts == 2, done


def test_stopping_a_worker_mid_job_puts_the_job_back_in_the_queue(plugin_env, start_worker):
    queue, job, worker, _ = _held_job(plugin_env, start_worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert queue.get(job.id).status == "queued"


def test_the_supervisor_restarts_a_dead_child_and_stops_it():
    supervisor = Supervisor(
        [sys.executable, "-c", "import time; time.sleep(600)"], name="sleeper", max_backoff=0.5
    )
    supervisor.start()
    try:
        first = wait_until(lambda: supervisor.pid)
        assert isinstance(first, int)
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: (pid := supervisor.pid) != first and pid)
        assert isinstance(second, int) and supervisor.restarts == 1
    finally:
        supervisor.stop(timeout=5)
    assert not pid_alive(second)


def test_a_reused_pid_does_not_keep_a_dead_workers_jobs(tmp_path: Path) -> None:
    # After a container restart the new processes get the old pids: a registered worker whose
    # pid now belongs to a younger process is gone, and its jobs are recovered at once.
    registry = WorkerRegistry(tmp_path / "prelabel.db")
    me = os.getpid()
    old, current = f"host:{me}:old", f"host:{me}:now"
    for worker_id in (old, current):
        registry.beat(worker_id)
    with registry._db.write() as conn:
        conn.execute("UPDATE workers SET host = ?", (socket.gethostname(),))
        conn.execute("UPDATE workers SET started_at = started_at - 3600 WHERE id = ?", (old,))
    started = pid_started_at(me)
    assert started is not None and started < time.time()
    assert registry.dead_on_this_host() == [old]
