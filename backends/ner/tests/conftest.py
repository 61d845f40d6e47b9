"""Offline test environment: no downloads; every model is built or trained here.

``tiny_dir`` is a random two-layer BERT with a tokenizer learned from the synthetic corpus;
``base_dir`` is that model fine-tuned on the corpus with the tags a downloaded NER model has
(``B-PER``, ``I-ORG``…), so tests can map and score real predictions in a few seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before transformers is imported anywhere: huggingface_hub reads it at import time.
os.environ["HF_HUB_OFFLINE"] = "1"

from prelabel.config import LabelConfig
from prelabel_ner import NerBackend
from prelabel_ner.synthetic import build_tiny_model, corpus
from prelabel_ner.training import Example, TrainOptions, fine_tune

#: The classes of the "downloaded" base model: CoNLL-style types.
BASE_TYPES = '<View><Labels name="ner" toName="t"><Label value="PER"/><Label value="ORG"/><Label value="LOC"/><Label value="MISC"/></Labels><Text name="t" value="$t"/></View>'

#: Options that make the tiny model learn the synthetic corpus in seconds.
TINY = {"learning_rate": 3e-3, "epochs": 12, "freeze_embeddings": False}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A trained NER model with tags B-PER…I-MISC (MISC never seen in training)."""
    control = LabelConfig.parse(BASE_TYPES).control("ner")
    examples = [Example(text, spans) for text, spans in corpus(1, 150)]
    out = tmp_path_factory.mktemp("base") / "model"
    options = TrainOptions(
        epochs=15,
        batch_size=8,
        learning_rate=3e-3,
        max_length=512,
        overlap=16,
        seed=0,
        freeze_embeddings=False,
    )
    fine_tune(str(tiny_dir), control, examples, out, options)
    return out


@pytest.fixture(scope="session")
def tiny_training() -> dict[str, object]:
    """Settings that make the tiny model learn the synthetic corpus in seconds."""
    return dict(TINY)


@pytest.fixture
def backend(base_dir: Path) -> NerBackend:
    ner = NerBackend(NerBackend.load_settings(model=str(base_dir), **TINY))
    ner.load()
    return ner
