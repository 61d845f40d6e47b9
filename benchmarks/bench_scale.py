"""Scale-out figures: /predict throughput with 1, 2 and 4 replicas, and webhook-to-promotion
latency on the embedded default (SQLite, a supervised worker) vs PostgreSQL + RQ.

Every server is real and on loopback: PostgreSQL and Redis from Debian's packages
(scripts/install-services), started in temporary directories by tests/services.py; the
replicas are `prelabel serve` processes (gunicorn, 1 worker x 4 threads) with the state in
PostgreSQL; the llm backend talks to `prelabel_llm.fake.FakeProvider` (100 ms per call).

Throughput: 16 client threads send /predict batches (textcls: 20 tasks, llm: 4 tasks, no
cache) round robin over the replicas for a fixed time; tasks per second. Latency: the sixth
annotation webhook (which makes training due) to the promoted version in /jobs, textcls,
alternating modes.

    .venv/bin/python benchmarks/bench_scale.py     # prints figures, writes results/scale.json
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the loopback servers of the test suite

from services import PostgresServer, Process, RedisServer, Replica, stop_all  # noqa: E402

from prelabel.testing import fixture  # noqa: E402
from prelabel_llm.fake import FakeProvider  # noqa: E402

CLIENTS = 16
SECONDS = 10.0
BATCH = {"textcls": 20, "llm": 4}
LLM_LATENCY = 0.1
ROUNDS = 4


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    env.update(PRELABEL_LOG_LEVEL="WARNING", **extra)
    return env


@contextmanager
def replicas(name: str, count: int, env: dict[str, str], tmp: Path) -> Iterator[list[Replica]]:
    started = [
        Replica(name, {**env, "PRELABEL_MODEL_DIR": str(tmp / f"{name}-{count}-{i}")},
                tmp / f"{name}-{count}-{i}.log", "--workers", "1", "--threads", "4")
        for i in range(count)
    ]  # fmt: skip
    try:
        yield [replica.healthy() for replica in started]
    finally:
        stop_all(list(started))


def throughput(servers: list[Replica], body: dict[str, Any]) -> float:
    """Tasks per second that CLIENTS threads get through ``servers`` in SECONDS."""
    done = [0] * CLIENTS
    deadline = time.monotonic() + SECONDS
    tasks = len(body["tasks"])

    def client(i: int) -> None:
        with httpx.Client(timeout=120) as http:
            n = i
            while time.monotonic() < deadline:
                server = servers[n % len(servers)]
                response = http.post(f"http://127.0.0.1:{server.port}/predict", json=body)
                response.raise_for_status()
                assert len(response.json()["results"]) == tasks
                done[i] += tasks
                n += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def predict_body(size: int) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(fixture("predict_batch_text")["json"])
    template = body["tasks"][0]
    body["tasks"] = [
        {**copy.deepcopy(template), "id": i, "data": {"text": f"review {i}: a lovely day"}}
        for i in range(size)
    ]
    return body


def annotation(i: int, label: str) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(fixture("webhook_ANNOTATION_CREATED")["json"])
    text = {"Positive": "a great, lovely day", "Negative": "an awful, sad day"}[label]
    body["task"].update(id=i, data={"text": f"{text} {i}"})
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
               "value": {"choices": [label]}}]  # fmt: skip
    body["annotation"].update(id=i, task=i, result=result)
    return body


def promotion_latency(server: Replica, first_task: int) -> float:
    """Seconds from the webhook that makes training due to the promoted version in /jobs."""
    http = server.client
    for i in range(first_task, first_task + 5):
        http.post("/webhook", json=annotation(i, "Positive" if i % 2 else "Negative"))
    started = time.monotonic()
    response = http.post("/webhook", json=annotation(first_task + 5, "Positive"))
    job_id = response.json()["job"]
    while True:
        job = http.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded" and job["result"]["promoted"], job
            return time.monotonic() - started
        time.sleep(0.02)


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake provider's request log
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "clients": CLIENTS,
        "seconds_per_figure": SECONDS,
        "batch": BATCH,
        "llm_provider_latency_s": LLM_LATENCY,
    }
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        postgres = PostgresServer()
        stack.callback(postgres.close)
        redis = RedisServer()
        stack.callback(redis.close)
        fake = stack.enter_context(
            FakeProvider(lambda call: {"sentiment": "Positive"}, latency=LLM_LATENCY)
        )

        # -- /predict throughput by number of replicas -----------------------------------
        scaling: dict[str, dict[str, float]] = {}
        for name in ("textcls", "llm"):
            env = base_env(PRELABEL_DATABASE_URL=postgres.create_database(),
                           PRELABEL_JOB_RUNNER="external")  # fmt: skip
            if name == "llm":
                env.update(PRELABEL_LLM_BASE_URL=fake.openai_url, PRELABEL_LLM_API_KEY="sk-bench",
                           PRELABEL_LLM_CACHE="false", PRELABEL_LLM_LOGPROBS="false")  # fmt: skip
            body = predict_body(BATCH[name])
            scaling[name] = {}
            for count in (1, 2, 4):
                with replicas(name, count, env, tmp) as servers:
                    throughput(servers, predict_body(2))  # warm-up: models, pools
                    scaling[name][str(count)] = round(throughput(servers, body), 1)
                print(f"{name}: {count} replica(s): {scaling[name][str(count)]} tasks/s")
        figures["predict_tasks_per_s"] = scaling
        figures["predict_speedup_vs_1"] = {
            name: {n: round(v / by[str(1)], 2) for n, v in by.items()}
            for name, by in scaling.items()
        }

        # -- webhook to promotion: SQLite + supervised worker vs PostgreSQL + RQ ----------
        common = {"PRELABEL_TRAIN_MIN_ANNOTATIONS": "6", "PRELABEL_TRAIN_EVERY": "6"}
        sqlite_env = base_env(PRELABEL_MODEL_DIR=str(tmp / "sqlite"), **common)
        scale_env = base_env(PRELABEL_MODEL_DIR=str(tmp / "scale-replica"),
                             PRELABEL_DATABASE_URL=postgres.create_database(),
                             PRELABEL_REDIS_URL=redis.url, PRELABEL_JOB_RUNNER="external",
                             **common)  # fmt: skip
        embedded = Replica("textcls", sqlite_env, tmp / "sqlite.log")
        scaled = Replica("textcls", scale_env, tmp / "scale.log")
        worker = Process(["worker", "textcls"], {**scale_env, "PRELABEL_MODEL_DIR": str(tmp / "w")},
                         tmp / "worker.log")  # fmt: skip
        try:
            embedded.healthy(), scaled.healthy()
            setup = fixture("setup")["json"]
            for server in (embedded, scaled):
                server.client.post("/setup", json=setup).raise_for_status()
            latencies: dict[str, list[float]] = {"sqlite": [], "postgresql_rq": []}
            for round_ in range(ROUNDS + 1):  # the first round of each warms up
                for mode, server in (("sqlite", embedded), ("postgresql_rq", scaled)):
                    seconds = promotion_latency(server, 1 + round_ * 6)
                    if round_:
                        latencies[mode].append(seconds)
        finally:
            stop_all([embedded, scaled, worker])
        medians = {mode: statistics.median(v) for mode, v in latencies.items()}
        figures["webhook_to_promotion_s"] = {
            mode: {"median": round(m, 2), "runs": [round(v, 2) for v in latencies[mode]]}
            for mode, m in medians.items()
        }
        figures["promotion_ratio_postgresql_rq_vs_sqlite"] = round(
            medians["postgresql_rq"] / medians["sqlite"], 2
        )
    print(json.dumps(figures, indent=2))
    out = HERE / "results" / "scale.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
