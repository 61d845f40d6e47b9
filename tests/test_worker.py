"""`prelabel worker` for real: a process per job, deaths noticed at once, supervision.

A throwaway backend plugin (a ``.dist-info`` with an entry point on ``PYTHONPATH``) trains
slowly on demand and writes its pid, so the tests can kill the job process or the worker in
the middle of a job, exactly as the OOM killer or an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.liveness import WorkerRegistry, pid_alive
from prelabel._engine.store import ProjectStore
from prelabel._engine.supervisor import Supervisor
from prelabel.project import ProjectKey
from prelabel.threads import TRAIN_NICENESS

KEY = ProjectKey("3", 1700000000)
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="c" toName="text"><Choice value="A"/><Choice value="B"/></Choices></View>"""

PLUGIN = """
import json, os, time
from pathlib import Path
from prelabel.testing.reference import ReferenceBackend

class SlowBackend(ReferenceBackend):
    name = "slowfit"

    def fit(self, job):
        control = Path(os.environ["SLOWFIT_DIR"])
        seen = {"threads": self.threads, "nice": os.nice(0)}
        (control / f"seen-{os.getpid()}.json").write_text(json.dumps(seen))
        (control / f"pid-{os.getpid()}").touch()
        while (control / "hold").exists():
            time.sleep(0.05)
        return super().fit(job)
"""


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a process that sees the ``slowfit`` plugin and a fresh model dir."""
    site = tmp_path / "site"
    (site / "slowfit-0.1.dist-info").mkdir(parents=True)
    (site / "slowfit-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: slowfit\nVersion: 0.1\n"
    )
    (site / "slowfit-0.1.dist-info" / "entry_points.txt").write_text(
        "[prelabel.backends]\nslowfit = slowfit_plugin:SlowBackend\n"
    )
    (site / "slowfit_plugin.py").write_text(textwrap.dedent(PLUGIN))
    control = tmp_path / "control"
    control.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]),
        PRELABEL_MODEL_DIR=str(tmp_path / "models"),
        PRELABEL_LOG_LEVEL="INFO",
        SLOWFIT_DIR=str(control),
    )
    return env


def _store(env: dict[str, str]) -> ProjectStore:
    store = ProjectStore(Path(env["PRELABEL_MODEL_DIR"]))
    store.remember_setup(
        KEY, extra_params={}, hostname=None, access_token=None, label_config=CONFIG
    )
    tasks = [
        {"id": i, "data": {"text": f"{word} {i}"}, "annotations": [{"id": i, "result": [
            {"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
        ]}]}
        for i, (word, label) in enumerate([("good", "A"), ("bad", "B")] * 3)
    ]  # fmt: skip
    store.replace_annotations(KEY, tasks)
    return store


def _queue(env: dict[str, str]) -> JobQueue:
    return JobQueue(Path(env["PRELABEL_MODEL_DIR"]) / "prelabel.db")


@pytest.fixture
def start_worker(
    plugin_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "prelabel", "worker", "slowfit"],
            env=plugin_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait(what: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def _job_pid(control: Path) -> int:
    found = _wait(lambda: sorted(control.glob("pid-*")))
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
    done = _wait(lambda: (j := queue.get(job.id)).status not in ("queued", "running") and j)
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
    _wait(lambda: not pid_alive(child), timeout=10)  # the job process died with its worker
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
        first = _wait(lambda: supervisor.pid)
        assert isinstance(first, int)
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: (pid := supervisor.pid) != first and pid)
        assert isinstance(second, int) and supervisor.restarts == 1
    finally:
        supervisor.stop(timeout=5)
    assert not pid_alive(second)
