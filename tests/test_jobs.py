"""JobQueue and JobRunner: coalescing, one running job per project, stale requeue, processes.

The queue's tests run on both engines: the SQLite file and a real PostgreSQL server.
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.pool
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prelabel._engine.jobrunner import JobRunner
from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.store import ProjectStore
from prelabel.errors import NotFound
from prelabel.project import ProjectKey

A = ProjectKey("1", 1700000000)
B = ProjectKey("2", 1700000001)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path) -> Path | str:
    """The database: a SQLite file, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "prelabel.db"
    url: str = request.getfixturevalue("pg_url")
    return url


def _target(db: str) -> Path | str:
    """What a spawned process opens (arguments cross as strings)."""
    return db if "://" in db else Path(db)


@pytest.fixture
def queue(db: Path | str) -> JobQueue:
    return JobQueue(db)


def _warm(_: int) -> None:
    time.sleep(0.2)  # keeps this worker busy so that each worker gets one warm-up task


@pytest.fixture(scope="module")
def pool() -> Iterator[multiprocessing.pool.Pool]:
    """Four spawned processes, shared by this module's tests (each costs ~1 s to start)."""
    with pytest.MonkeyPatch.context() as mp:
        # Spawned children import this module by its pytest name (e.g. "tests.test_jobs").
        mp.syspath_prepend(str(Path(__file__).resolve().parents[__name__.count(".")]))
        with multiprocessing.get_context("spawn").Pool(4) as workers:
            workers.map(_warm, range(4), chunksize=1)
            yield workers


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_enqueue_creates_a_queued_job(queue):
    job = queue.enqueue(A, reason="ANNOTATION_CREATED")
    assert job.id == "train-1_1700000000-0001"
    assert (job.project, job.kind, job.status, job.reason, job.coalesced) == (
        A,
        "train",
        "queued",
        "ANNOTATION_CREATED",
        1,
    )
    assert job.payload == {} and job.result == {} and job.error is None
    assert job.started_at is None and job.finished_at is None and job.heartbeat_at is None
    assert queue.get(job.id) == job


def test_burst_coalesces_into_one_queued_job(queue):
    payloads = [{"pull": False}] * 4 + [{"pull": True}] + [{"pull": False, "n": 3}] * 5
    reasons = ["ANNOTATION_CREATED"] * 8 + ["START_TRAINING", "ANNOTATION_CREATED"]
    jobs = [queue.enqueue(A, reason=r, payload=p) for r, p in zip(reasons, payloads, strict=True)]
    assert len({j.id for j in jobs}) == 1
    job = queue.get(jobs[0].id)
    assert job.coalesced == 10
    assert job.reason == "ANNOTATION_CREATED x9, START_TRAINING"
    assert job.payload == {"pull": True, "n": 3}  # booleans OR-ed, others last-wins
    assert queue.enqueue(B, reason="x").id != job.id  # other project
    assert queue.enqueue(A, "export", reason="x").id != job.id  # other kind
    assert len(queue.list()) == 3


def test_enqueue_while_running_queues_a_new_job_that_waits(queue):
    first = queue.enqueue(A, reason="e1")
    assert queue.claim("w1").id == first.id
    second = queue.enqueue(A, reason="e2")
    third = queue.enqueue(A, reason="e3")
    assert second.id != first.id and third.id == second.id and third.coalesced == 2
    other = queue.enqueue(B, reason="e")
    # A's second job waits for the first; B's job is free to run.
    assert queue.claim("w2").id == other.id
    assert queue.claim("w3") is None
    queue.finish(first.id, result={"version": "m-1"})
    assert queue.claim("w3").id == second.id


def test_database_refuses_two_running_jobs_for_a_project(queue, db):
    queue.enqueue(A, reason="e")
    queue.enqueue(A, "other", reason="e")
    queue.claim("w1")
    sql = "UPDATE jobs SET status = 'running' WHERE status = 'queued'"
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(sql)
    else:
        with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)


def test_finish_get_list_counts(queue):
    ok = queue.enqueue(A, reason="e")
    bad = queue.enqueue(B, reason="e")
    queue.claim("w")
    queue.claim("w")
    done = queue.finish(ok.id, result={"version": "m-1", "promoted": True, "metrics": {"f1": 1}})
    assert done.status == "succeeded" and done.result["metrics"] == {"f1": 1}
    assert done.finished_at >= done.started_at >= done.created_at
    failed = queue.finish(bad.id, error="ValueError: boom")
    assert (failed.status, failed.error) == ("failed", "ValueError: boom")
    assert [j.id for j in queue.list()] == [bad.id, ok.id]
    assert [j.id for j in queue.list(A)] == [ok.id]
    assert len(queue.list(limit=1)) == 1
    assert queue.counts() == {
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
    }
    with pytest.raises(NotFound, match="train-9-0042"):
        queue.get("train-9-0042")


def test_finish_ignores_a_job_that_is_not_ours(queue):
    job = queue.enqueue(A, reason="e")
    assert queue.finish(job.id, result={"x": 1}).status == "queued"  # never claimed
    queue.claim("w1")
    assert queue.finish(job.id, error="late", worker_id="w0").status == "running"
    assert queue.heartbeat(job.id, worker_id="w0") is False
    assert queue.heartbeat(job.id, worker_id="w1") is True
    assert queue.finish(job.id, worker_id="w1").status == "succeeded"
    assert queue.heartbeat(job.id) is False


def test_cancel_only_queued_jobs(queue):
    job = queue.enqueue(A, reason="e")
    assert queue.cancel(job.id).status == "cancelled"
    assert queue.claim("w") is None
    running = queue.enqueue(A, reason="e")
    queue.claim("w")
    assert queue.cancel(running.id).status == "running"


def test_old_finished_jobs_are_deleted(db):
    queue = JobQueue(db, keep_finished=2)
    ids = []
    for _ in range(4):
        ids.append(queue.enqueue(A, reason="e").id)
        queue.claim("w")
        queue.finish(ids[-1])
    assert [j.id for j in queue.list()] == ids[:1:-1]
    with pytest.raises(NotFound, match="newest 2 finished"):
        queue.get(ids[0])


def test_stale_running_job_is_requeued_then_given_up(db):
    queue = JobQueue(db, stale_after=0.2, max_attempts=2)
    job = queue.enqueue(A, reason="e")
    assert queue.claim("dead-1").attempts == 1
    assert queue.claim("w") is None  # still fresh
    time.sleep(0.25)
    again = queue.claim("dead-2")
    assert (again.id, again.worker, again.attempts) == (job.id, "dead-2", 2)
    time.sleep(0.25)
    assert queue.claim("w") is None
    gone = queue.get(job.id)
    assert gone.status == "failed" and "dead-2 stopped heartbeating" in gone.error
    assert "gave up" in gone.error


def test_heartbeat_keeps_a_job_from_going_stale(db):
    queue = JobQueue(db, stale_after=0.2)
    job = queue.enqueue(A, reason="e")
    queue.claim("w1")
    for _ in range(6):
        time.sleep(0.05)
        assert queue.heartbeat(job.id)
        assert queue.claim("w2") is None
    assert queue.get(job.id).worker == "w1"


def test_stale_job_merges_into_a_queued_sibling(db):
    queue = JobQueue(db, stale_after=0.05)
    job = queue.enqueue(A, reason="START_TRAINING", payload={"pull": True})
    queue.claim("dead")
    queued = queue.enqueue(A, reason="ANNOTATION_CREATED", payload={"pull": False})
    time.sleep(0.1)
    claimed = queue.claim("w")
    assert claimed.id == queued.id
    assert claimed.payload == {"pull": True} and claimed.coalesced == 2
    assert claimed.reason == "ANNOTATION_CREATED, START_TRAINING"
    stale = queue.get(job.id)
    assert stale.status == "cancelled" and f"merged into queued job {queued.id}" in stale.error


@pytest.mark.parametrize("kwargs", [{"stale_after": 0}, {"max_attempts": 0}, {"keep_finished": 0}])
def test_queue_rejects_nonsense_limits(db, kwargs):
    with pytest.raises(ValueError, match="JobQueue needs"):
        JobQueue(db, **kwargs)


def test_queue_shares_the_store_database(tmp_path):
    store = ProjectStore(tmp_path)
    queue = JobQueue(store.db_path)
    queue.enqueue(A, reason="e")
    ProjectStore(tmp_path)
    with sqlite3.connect(store.db_path) as conn:
        rows = dict(conn.execute("SELECT component, version FROM schema_versions"))
    assert rows == {"store": 1, "jobs": 3}
    assert queue.counts()["queued"] == 1


# -- runner ----------------------------------------------------------------------------------


def test_run_once_records_result_and_failure(queue):
    def handler(job: Job) -> dict:
        if job.project == B:
            raise ValueError("no annotations yet")
        return {"version": "m-1", "promoted": True}

    runner = JobRunner(queue, handler, worker_id="w")
    assert runner.run_once() is None
    queue.enqueue(A, reason="e")
    queue.enqueue(B, reason="e")
    ok, bad = runner.run_once(), runner.run_once()
    assert (ok.status, ok.result, ok.worker) == (
        "succeeded",
        {"version": "m-1", "promoted": True},
        "w",
    )
    assert (bad.status, bad.error) == ("failed", "ValueError: no annotations yet")
    assert runner.run_once() is None


def test_runner_thread_is_woken_by_enqueue(queue):
    seen: list[str] = []
    # A poll interval far beyond the test's patience: only wake() can make it run in time.
    runner = JobRunner(queue, lambda job: seen.append(job.id) or {}, poll_interval=60.0)
    runner.start()
    try:
        time.sleep(0.05)  # let it claim nothing and go to sleep
        job = queue.enqueue(A, reason="e")
        wait_for(lambda: queue.get(job.id).status == "succeeded", timeout=5.0)
        assert seen == [job.id]
    finally:
        runner.stop(timeout=5.0)
    assert runner._thread is None


def test_heartbeat_thread_beats_during_a_long_handler(db):
    queue = JobQueue(db, stale_after=0.3)
    other = JobQueue(db, stale_after=0.3)  # another process's view
    started = threading.Event()
    release = threading.Event()
    stolen: list[Job | None] = []

    def handler(job: Job) -> dict:
        started.set()
        release.wait(5.0)
        return {}

    runner = JobRunner(queue, handler, heartbeat_interval=0.02)
    job = queue.enqueue(A, reason="e")
    thread = threading.Thread(target=runner.run_once)
    thread.start()
    assert started.wait(5.0)
    first_beat = queue.get(job.id).heartbeat_at
    time.sleep(0.6)  # twice stale_after: without heartbeats the job would be requeued
    stolen.append(other.claim("thief"))
    release.set()
    thread.join(5.0)
    assert stolen == [None]
    finished = queue.get(job.id)
    assert finished.status == "succeeded" and finished.heartbeat_at > first_beat


# -- across processes ------------------------------------------------------------------------


def _claim_until_empty(db: str, worker: str, start_at: float) -> tuple[int, list[tuple]]:
    queue = JobQueue(_target(db))
    spans = []
    time.sleep(max(0.0, start_at - time.time()))  # all workers start claiming together
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = queue.claim(worker)
        if job is None:
            if queue.counts()["queued"] == 0:
                break
            time.sleep(0.002)
            continue
        start = time.time()
        time.sleep(0.01)
        end = time.time()
        spans.append((job.id, str(job.project), start, end))
        queue.finish(job.id, result={"worker": worker}, worker_id=worker)
    return os.getpid(), spans


def test_processes_claim_each_job_once_and_one_per_project(queue, db, pool):
    projects = [ProjectKey(str(i), 1700000000 + i) for i in range(5)]
    ids = {queue.enqueue(p, f"kind{k}", reason="e").id for p in projects for k in range(6)}
    assert len(ids) == 30
    start_at = time.time() + 0.1
    results = pool.starmap(
        _claim_until_empty, [(str(db), f"w{i}", start_at) for i in range(4)], chunksize=1
    )
    spans = [span for _, worker in results for span in worker]
    assert sorted(s[0] for s in spans) == sorted(ids)  # each job run exactly once
    assert queue.counts()["succeeded"] == 30
    for project in projects:
        mine = sorted((s[2], s[3]) for s in spans if s[1] == str(project))
        assert len(mine) == 6
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(mine))
    assert len({pid for pid, worker in results if worker}) >= 2  # the work was shared


def _enqueue_many(db: str, n: int) -> None:
    queue = JobQueue(_target(db))
    for _ in range(n):
        queue.enqueue(A, reason="ANNOTATION_CREATED")


def test_processes_enqueueing_at_once_coalesce(queue, db, pool):
    pool.starmap(_enqueue_many, [(str(db), 25)] * 4, chunksize=1)
    [job] = queue.list()
    assert (job.status, job.coalesced, job.reason) == ("queued", 100, "ANNOTATION_CREATED x100")


def test_list_by_bare_project_id_covers_every_generation(tmp_path):
    queue = JobQueue(tmp_path / "prelabel.db")
    old = queue.enqueue(ProjectKey("4", 100), reason="A")
    new = queue.enqueue(ProjectKey("4", 200), reason="B")
    queue.enqueue(ProjectKey("5", 100), reason="C")
    assert [j.id for j in queue.list(ProjectKey("4"))] == [new.id, old.id]
    assert [j.id for j in queue.list(ProjectKey("4", 100))] == [old.id]
