"""Jobs on RQ: `prelabel worker` processes consuming a real Redis, state on a real PostgreSQL.

The ``slowfit`` plugin (conftest) holds ``fit`` on demand and writes the pid of the process
that trains, so a test can kill a worker mid-training the way a lost machine would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from services import seed_slowfit_project, wait_until

from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.runtime import build_runtime
from prelabel.errors import ServiceUnavailable
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings

A = ProjectKey("3", 1700000000)
B = ProjectKey("4", 1700000000)


@pytest.fixture
def env(plugin_env, pg_url, redis_server) -> dict[str, str]:
    plugin_env.update(
        PRELABEL_DATABASE_URL=pg_url,
        PRELABEL_REDIS_URL=redis_server.url,
        PRELABEL_JOB_STALE_SECONDS="4",
        PRELABEL_JOB_RUNNER="external",
    )
    return plugin_env


@pytest.fixture
def runtime(env, monkeypatch):
    """The server side: what `prelabel serve` builds with these settings."""
    for name, value in env.items():
        if name.startswith("PRELABEL_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    monkeypatch.syspath_prepend(env["PYTHONPATH"].split(os.pathsep)[0])
    from prelabel._engine.runtime import make_backend

    settings = CoreSettings()
    runtime = build_runtime(make_backend("slowfit", settings), settings)
    for key in (A, B):
        seed_slowfit_project(runtime.store, key)
    return runtime


def _finished(queue: JobQueue, job_id: str) -> Job | None:
    job = queue.get(job_id)
    return job if job.status in ("succeeded", "failed", "cancelled") else None


def test_workers_run_every_job_once_and_one_at_a_time_per_project(runtime, start_worker):
    start_worker(), start_worker()
    queue = runtime.queue
    jobs = [
        queue.enqueue(A, "train", reason="e"),
        queue.enqueue(A, "retrain", reason="e"),
        queue.enqueue(B, "train", reason="e"),
    ]
    assert queue.enqueue(A, "train", reason="again").coalesced == 2  # merged, not delivered
    done = [wait_until(lambda j=job: _finished(queue, j.id)) for job in jobs]
    assert all(isinstance(j, Job) and j.status == "succeeded" for j in done), done
    assert all(j.attempts == 1 and j.delivery for j in done if isinstance(j, Job))
    first, second = (j for j in done if isinstance(j, Job) and j.project == A)
    assert first.finished_at <= second.started_at or second.finished_at <= first.started_at
    assert [v.name for v in runtime.store.versions(A)] == ["slowfit-2", "slowfit-1"]
    assert runtime.live_workers() == 2


def test_kill_9_of_a_worker_mid_training_loses_nothing(runtime, start_worker, env):
    control = Path(env["SLOWFIT_DIR"])
    (control / "hold").touch()
    workers = [start_worker(), start_worker()]
    wait_until(lambda: runtime.live_workers() == 2)
    job = runtime.queue.enqueue(A, reason="ANNOTATION_CREATED")
    trainer = int(wait_until(lambda: sorted(control.glob("pid-*")))[0].name.removeprefix("pid-"))  # type: ignore[index]
    ppid = int(Path(f"/proc/{trainer}/stat").read_text().rsplit(")", 1)[1].split()[1])
    [victim] = [w for w in workers if w.pid == ppid]  # the worker whose work-horse trains
    # The machine is gone: the worker, then its work-horse (RQ starts it in its own session).
    victim.kill()
    victim.wait()
    os.kill(trainer, signal.SIGKILL)
    (control / "hold").unlink()
    done = wait_until(lambda: _finished(runtime.queue, job.id), timeout=90)
    assert isinstance(done, Job)
    assert (done.status, done.attempts) == ("succeeded", 2), done
    assert done.worker is not None and str(trainer) not in done.worker
    assert runtime.store.current_version(A) is not None


def test_redis_down_refuses_with_503_and_the_job_starts_once_it_is_back(
    runtime, start_worker, redis_server
):
    start_worker()
    redis_server.stop()
    with pytest.raises(
        ServiceUnavailable,
        match=r"Redis at redis://127\.0\.0\.1:\d+/0 cannot be reached .* is stored and starts once",
    ):
        runtime.queue.enqueue(A, reason="ANNOTATION_CREATED")
    [job] = runtime.queue.list(A)
    assert job.status == "queued" and job.delivery is None
    with pytest.raises(ServiceUnavailable, match="Redis"):
        runtime.live_workers()
    redis_server.start()
    done = wait_until(lambda: _finished(runtime.queue, job.id))  # announced again by a sweep
    assert isinstance(done, Job) and done.status == "succeeded"
