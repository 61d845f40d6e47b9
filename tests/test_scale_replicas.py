"""The scale-out mode end to end: two `prelabel serve` replicas and two `prelabel worker`s of
textcls sharing a real PostgreSQL, Redis and S3-compatible server (moto) on loopback, each
with a model directory of its own, as on four machines.

A webhook to replica A trains on a worker; replica B lists the job and serves the new
version. PostgreSQL or Redis going away answers 503 naming it, and service comes back without
restarting anything. (A worker killed mid-training: tests/test_scale_rq.py.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from services import Process, Replica, stop_all, wait_until

from prelabel.project import ProjectKey

TEXTS = {"Positive": "a great, lovely, wonderful day", "Negative": "an awful, terrible, sad day"}


@pytest.fixture
def cluster(tmp_path, pg_url, redis_server, s3_server) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    env.update(
        s3_server.environ(prefix=tmp_path.name),
        PRELABEL_DATABASE_URL=pg_url,
        PRELABEL_REDIS_URL=redis_server.url,
        PRELABEL_JOB_RUNNER="external",  # the workers below run the jobs
        PRELABEL_TRAIN_MIN_ANNOTATIONS="6",
        PRELABEL_TRAIN_EVERY="6",
        PRELABEL_JOB_STALE_SECONDS="10",
        PRELABEL_LOG_LEVEL="INFO",
    )
    started: list[Process] = []

    def machine(name: str) -> dict[str, str]:
        return {**env, "PRELABEL_MODEL_DIR": str(tmp_path / name)}

    try:
        for name in ("worker-1", "worker-2"):
            started.append(Process(["worker", "textcls"], machine(name), tmp_path / f"{name}.log"))
        replicas = [
            Replica("textcls", machine(name), tmp_path / f"{name}.log", "--threads", "4")
            for name in ("replica-a", "replica-b")
        ]
        started += replicas
        a, b = (replica.healthy().client for replica in replicas)
        yield {"a": a, "b": b, "redis": redis_server}
    finally:
        stop_all(started)


def _predict(client, text_predict, task_id: int = 1000) -> tuple[int, dict[str, Any]]:
    response = client.post("/predict", json=text_predict([(task_id, TEXTS["Positive"])]))
    return response.status_code, response.json()


def _train_on_a(cluster, ls_request, annotation_webhook) -> dict[str, Any]:
    a, b = cluster["a"], cluster["b"]
    setup = ls_request("setup")
    assert a.post("/setup", json=setup).status_code == 200
    job_id = None
    for i in range(6):
        label = "Positive" if i % 2 else "Negative"
        event = annotation_webhook(
            task_id=i + 1, annotation_id=i + 1, text=TEXTS[label], label=label
        )
        response = a.post("/webhook", json=event)
        assert response.status_code == 200, response.text
        job_id = response.json().get("job") or job_id
    assert job_id is not None  # the sixth annotation made training due

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = b.get(f"/jobs/{job_id}").json()  # replica B sees it too
        return job if job["status"] in ("succeeded", "failed") else None

    job = wait_until(finished, timeout=120)
    assert isinstance(job, dict)
    return job


def test_a_webhook_to_one_replica_trains_on_a_worker_and_the_other_serves_it(
    cluster, ls_request, annotation_webhook, text_predict, choice_of
):
    b = cluster["b"]
    status, before = _predict(b, text_predict)
    assert status == 200 and before["results"][0]["model_version"] == "textcls-0.1.0"
    job = _train_on_a(cluster, ls_request, annotation_webhook)
    assert job["status"] == "succeeded", job
    assert job["result"]["promoted"] is True and job["attempts"] == 1
    assert job["worker"] and job["kind"] == "train"
    listed = b.get("/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]] and listed[0] == job
    status, after = _predict(b, text_predict)
    assert status == 200, after
    [entry] = after["results"]
    assert entry["model_version"] == job["result"]["version"] == "textcls-1"
    assert choice_of(entry) == ["Positive"]
    project = ProjectKey.parse(ls_request("setup")["project"])
    assert [v["name"] for v in b.get(f"/projects/{project}/versions").json()["versions"]] == [
        "textcls-1"
    ]
    health = b.get("/health").json()
    assert (
        health["training"]["workers"] == 2 and health["training"]["queue"] == "rq:prelabel-textcls"
    )


def test_postgres_and_redis_outages_are_503s_that_heal_without_restarts(
    cluster, ls_request, annotation_webhook, text_predict, postgres_server
):
    a, b = cluster["a"], cluster["b"]
    assert a.post("/setup", json=ls_request("setup")).status_code == 200
    postgres_server.stop()
    try:
        status, body = _predict(b, text_predict)
        assert status == 503 and body["error"] == "ServiceUnavailable"
        assert "PostgreSQL database postgresql://prelabel@127.0.0.1" in body["message"]
        assert a.get("/health").status_code == 503
    finally:
        postgres_server.start()
    assert _predict(b, text_predict)[0] == 200  # the same processes, new connections
    assert a.get("/health").status_code == 200

    cluster["redis"].stop()
    try:
        for i in range(6):  # the sixth makes training due: a job to send, and no Redis
            label = "Positive" if i % 2 else "Negative"
            event = annotation_webhook(
                task_id=i + 1, annotation_id=i + 1, text=TEXTS[label], label=label
            )
            response = a.post("/webhook", json=event)
            assert response.status_code == (503 if i == 5 else 200), response.text
        assert "Redis at redis://127.0.0.1" in response.json()["message"]
        assert "is stored and starts once Redis is back" in response.json()["message"]
    finally:
        cluster["redis"].start()

    def succeeded() -> list[dict[str, Any]] | None:
        jobs = b.get("/jobs").json()["jobs"]
        return jobs if jobs and jobs[0]["status"] == "succeeded" else None

    [job] = wait_until(succeeded, timeout=120)  # type: ignore[misc]
    assert job["result"]["version"] == "textcls-1" and job["attempts"] == 1
    assert _predict(a, text_predict)[1]["results"][0]["model_version"] == "textcls-1"
