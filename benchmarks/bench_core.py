"""Core server figures: latency under training, /predict overhead, webhook acknowledgement.

Starts `prelabel serve textcls` (gunicorn, 1 worker x 8 threads, training in the worker process
that `serve` starts: the default deployment) on a free loopback port and measures it over HTTP.

    .venv/bin/python benchmarks/bench_core.py        # prints figures, writes results/core.json
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from _serving import report, served

from prelabel import ProjectKey
from prelabel.testing import make_context

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>"""
PROJECT = {"id": 7, "created_at": "2026-11-27T19:23:47.527544Z", "label_config": CONFIG}
KEY = "7.1795807427"
VOCAB = {
    "Positive": "love great excellent wonderful happy",
    "Negative": "hate awful broken refund terrible",
}


def text(rng: random.Random, label: str) -> str:
    words = rng.sample(VOCAB[label].split(), 2) + [f"w{rng.randrange(20000)}" for _ in range(30)]
    rng.shuffle(words)
    return " ".join(words)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "n": len(ordered),
    }


def timed(call) -> float:
    started = time.perf_counter()
    response = call()
    response.raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    rng = random.Random(0)
    model_dir = Path(tempfile.mkdtemp(prefix="prelabel-bench-"))
    with served("textcls", {"PRELABEL_MODEL_DIR": str(model_dir)}) as server:
        client = server.client
        setup = {
            "project": KEY,
            "schema": CONFIG,
            "hostname": "",
            "access_token": "",
            "extra_params": None,
        }
        client.post("/setup", json=setup).raise_for_status()
        figures: dict[str, object] = {}

        # Webhook acknowledgement: annotation events (each enqueues a coalesced training job).
        acks = []
        for i in range(300):
            label = rng.choice(list(VOCAB))
            event = {
                "action": "ANNOTATION_CREATED",
                "project": PROJECT,
                "task": {"id": i, "data": {"text": text(rng, label)}},
                "annotation": {
                    "id": i,
                    "task": i,
                    "result": [
                        {
                            "from_name": "sentiment",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [label]},
                        }
                    ],
                },
            }
            acks.append(timed(lambda event=event: client.post("/webhook", json=event)))
        figures["webhook_ack"] = percentiles(acks)

        # /health and /setup while a large training job runs in the same process.
        annotated = []
        for i in range(40000):
            label = rng.choice(list(VOCAB))
            annotated.append(
                {
                    "id": 10_000 + i,
                    "data": {"text": text(rng, label)},
                    "annotations": [
                        {
                            "id": 10_000 + i,
                            "result": [
                                {
                                    "from_name": "sentiment",
                                    "to_name": "text",
                                    "type": "choices",
                                    "value": {"choices": [label]},
                                }
                            ],
                        }
                    ],
                }
            )
        job = client.post(
            "/train", json={"annotations": annotated, "project": KEY, "label_config": CONFIG}
        ).json()["job"]
        health, setups = [], []
        while client.get(f"/jobs/{job}").json()["status"] in ("queued", "running"):
            health.append(timed(lambda: client.get("/health")))
            setups.append(timed(lambda: client.post("/setup", json=setup)))
        final = client.get(f"/jobs/{job}").json()
        figures["during_training"] = {
            "job_seconds": (final["finished_at"] or 0) - (final["started_at"] or 0),
            "health": percentiles(health),
            "setup": percentiles(setups),
        }
        idle = [timed(lambda: client.get("/health")) for _ in range(300)]
        figures["health_idle"] = percentiles(idle)

        # /predict over HTTP vs the same backend in-process, alternating, same batch.
        from prelabel_textcls import TextClassifierBackend

        version = client.post("/setup", json=setup).json()["model_version"]
        version_dir = max(
            (model_dir / "projects").glob("*/versions/*"), key=lambda p: p.stat().st_mtime
        )
        backend = TextClassifierBackend()
        backend.load()
        tasks = [
            {"id": i, "data": {"text": text(rng, rng.choice(list(VOCAB)))}} for i in range(500)
        ]
        ctx = make_context(
            backend,
            CONFIG,
            media=model_dir,
            project=ProjectKey("7", 1795807427),
            model_version=version,
            model_dir=version_dir,
        )
        body = {"tasks": tasks, "project": KEY, "label_config": CONFIG, "params": {"context": None}}
        http_times, local_times = [], []
        for _ in range(15):
            http_times.append(timed(lambda: client.post("/predict", json=body)))
            started = time.perf_counter()
            backend.predict(tasks, ctx)
            local_times.append(time.perf_counter() - started)
        http_med, local_med = statistics.median(http_times), statistics.median(local_times)
        figures["predict_500_tasks"] = {
            "http_median_ms": 1000 * http_med,
            "in_process_median_ms": 1000 * local_med,
            "overhead_ratio": http_med / local_med,
        }
    report("core", figures)


if __name__ == "__main__":
    main()
