"""The labelling loop measured: labels needed to reach a held-out accuracy, by task order.

A simulated annotator labels a synthetic pool (``prelabel.testing.simulation``) in batches of 4;
after each batch textcls is retrained (its real ``fit``) and the next batch is either random
or the tasks the model scores lowest (its real ``predict``, turned into scores by
``prelabel.metrics.scoring``'s least-confidence, margin and entropy policies: what sorting Label
Studio's task list by prediction score does). With two classes the three policies rank tasks
identically (each is monotone in the top probability), so only least-confidence is run there.

    .venv/bin/python benchmarks/bench_learning_loop.py   # prints, writes results/learning_loop.json
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _figures import single_threaded, write_figures

from prelabel.testing.simulation import TopicCorpus, labelling_loop, labels_to_reach
from prelabel_textcls import TextClassifierBackend

SEEDS = range(5)
POOL, HELDOUT, BATCH = 400, 300, 4

SETUPS = {
    "two topics, 20 topic words each": (
        TopicCorpus(topic_words=20, filler_words=100, length=15),
        0.98,
        ("random", "least_confidence"),
    ),
    "four topics, 20 topic words each": (
        TopicCorpus(classes=4, topic_words=20, filler_words=100, length=15),
        0.97,
        ("random", "least_confidence", "margin", "entropy"),
    ),
}


def main() -> None:
    backend = TextClassifierBackend()
    backend.load()
    started = time.perf_counter()
    figures: dict[str, object] = {"pool": POOL, "heldout": HELDOUT, "batch": BATCH}
    for name, (corpus, target, orders) in SETUPS.items():
        heldout = corpus.sample(HELDOUT, seed=10_000)
        needed: dict[str, list[int | None]] = {order: [] for order in orders}
        for seed in SEEDS:
            pool = corpus.sample(POOL, seed=seed)
            for order in orders:
                with tempfile.TemporaryDirectory(prefix="prelabel-loop-") as tmp:
                    steps = labelling_loop(
                        backend,
                        corpus,
                        pool=pool,
                        heldout=heldout,
                        order=order,
                        workdir=Path(tmp),
                        seed=seed,
                        batch=BATCH,
                        target=target,
                    )
                needed[order].append(labels_to_reach(steps, target))
            print(name, f"seed {seed}:", {o: n[-1] for o, n in needed.items()}, flush=True)
        random_median = statistics.median(n or POOL for n in needed["random"])
        summary = {}
        for order, counts in needed.items():
            median = statistics.median(n or POOL for n in counts)
            summary[order] = {
                "labels": counts,
                "median": median,
                "vs_random": round(median / random_median, 3),
            }
        figures[name] = {"target_accuracy": target, "orders": summary}
        print(name, {o: (s["median"], s["vs_random"]) for o, s in summary.items()}, flush=True)
    write_figures("learning_loop", figures, started)


if __name__ == "__main__":
    single_threaded(main)
