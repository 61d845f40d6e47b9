"""LLM backend figures: 200 tasks against a fake provider with 200 ms per call.

Concurrent (pool of 16) vs sequential (pool of 1) in the same run, then the cache-hit path.
The real openai SDK client talks HTTP to `prelabel_llm.fake.FakeProvider` on 127.0.0.1.

    .venv/bin/python benchmarks/bench_llm.py        # prints figures, writes results/llm.json
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings
from prelabel.testing import make_context
from prelabel_llm import LlmBackend
from prelabel_llm.fake import FakeProvider

HERE = Path(__file__).parent
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
<Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels></View>"""
TASKS = 200
LATENCY = 0.2


def answer(call: Any) -> dict[str, Any]:
    ner = [{"text": "Paris", "label": "LOC"}] if "Paris" in call.text else []
    return {"sentiment": "Positive" if "love" in call.text else "Negative", "ner": ner}


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tasks = [
        {"id": i, "data": {"text": f"Review {i}: I {'love' if i % 2 else 'hate'} Paris."}}
        for i in range(TASKS)
    ]
    with tempfile.TemporaryDirectory() as tmp, FakeProvider(answer, latency=LATENCY) as fake:
        backend = LlmBackend(
            LlmBackend.load_settings(
                base_url=fake.openai_url, api_key="sk-bench", state_dir=Path(tmp), deadline=300
            )
        )
        backend.load()
        media = MediaResolver(CoreSettings(model_dir=Path(tmp)))

        def run(batch: list[dict[str, Any]], **settings: Any) -> float:
            ctx = make_context(
                backend, CONFIG, media=media, model_version="bench", extra_params=settings
            )
            started = time.perf_counter()
            out = backend.predict(batch, ctx)
            elapsed = time.perf_counter() - started
            assert all(p.result for p in out), "every task must be labelled"
            return elapsed

        run(tasks[:2], cache=False)  # warm-up: SDK client, connection pool
        calls_before = len(fake.calls)
        concurrent = run(tasks, concurrency=16, cache=True)  # also fills the cache
        sequential = run(tasks, concurrency=1, cache=False)
        paid = len(fake.calls) - calls_before
        cached_batch = run(tasks, concurrency=16, cache=True)
        singles = [run([t], cache=True) * 1000 for t in tasks[:100]]
        assert len(fake.calls) - calls_before == paid, "cache hits must not call the provider"

    figures = {
        "machine": f"{platform.machine()}, {platform.python_version()}, CPU only",
        "tasks": TASKS,
        "provider_latency_s": LATENCY,
        "sequential_s": round(sequential, 2),
        "concurrent_16_s": round(concurrent, 2),
        "speedup": round(sequential / concurrent, 1),
        "cached_batch_200_s": round(cached_batch, 3),
        "cache_hit_single_task_ms_median": round(statistics.median(singles), 2),
        "cache_hit_single_task_ms_p95": round(sorted(singles)[94], 2),
    }
    out = HERE / "results" / "llm.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
