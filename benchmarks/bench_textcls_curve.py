"""textcls learning curves: held-out accuracy by number of labels, over several corpora.

The evidence behind textcls's defaults. Each corpus (:class:`prelabel.testing.simulation.
TopicCorpus`) varies one thing: vocabulary, text length, class count, noise, class balance.
For each training size, ``DRAWS`` random training sets are drawn and the real backend is fitted
on each (``fit`` and ``predict`` through ``prelabel.testing``); the figures are the mean and the
worst held-out accuracy over the draws, per settings variant.

    .venv/bin/python benchmarks/bench_textcls_curve.py   # prints, writes results/textcls_curve.json
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _figures import single_threaded, write_figures

from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings
from prelabel.testing.simulation import TopicCorpus, accuracy, train
from prelabel_textcls import TextClassifierBackend

SIZES = (8, 16, 24, 48, 96)
DRAWS = 8
HELDOUT = 300

CORPORA = {
    "two topics, 3 topic words in 12": TopicCorpus(),
    "long texts (30 words)": TopicCorpus(length=30),
    "large vocabulary (10 topic, 200 filler words)": TopicCorpus(
        topic_words=10, filler_words=200, length=20
    ),
    "four classes": TopicCorpus(classes=4),
    "noisy (20% topic words from another class)": TopicCorpus(noise=0.2),
    "imbalanced (80/20)": TopicCorpus(weights=(0.8, 0.2)),
}

#: Settings variants (extra_params); "default" is textcls's own.
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "previous default (bigrams, unweighted)": {"ngram_max": 2, "class_weight": "none"},
    "bigrams": {"ngram_max": 2},
    "unweighted": {"class_weight": "none"},
    "c=1": {"c": 1.0},
}


def main() -> None:
    backend = TextClassifierBackend()
    backend.load()
    started = time.perf_counter()
    figures: dict[str, object] = {"sizes": SIZES, "draws": DRAWS, "heldout": HELDOUT}
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    # A fresh directory per model: the backend caches loaded models by their directory.
    fresh = itertools.count()
    with tempfile.TemporaryDirectory(prefix="prelabel-curve-") as tmp:
        work = Path(tmp)
        media = MediaResolver(CoreSettings(model_dir=work))
        for corpus_name, corpus in CORPORA.items():
            heldout = corpus.sample(HELDOUT, seed=10_000)
            per_variant: dict[str, dict[str, list[float]]] = {}
            for variant, params in VARIANTS.items():
                means, worst = [], []
                for size in SIZES:
                    scores = []
                    for draw in range(DRAWS):
                        model_dir = work / f"v{next(fresh)}"
                        ctx = train(
                            backend,
                            corpus.label_config(),
                            corpus.sample(size, seed=draw),
                            workdir=model_dir,
                            media=media,
                            extra_params=params,
                        )
                        scores.append(accuracy(backend, ctx, heldout))
                        shutil.rmtree(model_dir)
                    means.append(round(statistics.mean(scores), 3))
                    worst.append(round(min(scores), 3))
                per_variant[variant] = {"mean": means, "worst": worst}
                print(f"{corpus_name:<48} {variant:<40} mean {means} worst {worst}", flush=True)
            curves[corpus_name] = per_variant
    figures["curves"] = curves
    write_figures("textcls_curve", figures, started)


if __name__ == "__main__":
    single_threaded(main)
