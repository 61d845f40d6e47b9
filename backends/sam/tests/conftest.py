"""Offline test environment: a tiny SAM with random weights under a temporary PRELABEL_MODEL_DIR."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from prelabel_sam import SamBackend
from prelabel_sam.synthetic import save_checkpoint

MODEL_DIR = Path(tempfile.mkdtemp(prefix="prelabel-sam-tests-")) / "models"
os.environ["HF_HUB_OFFLINE"] = "1"
# prelabel settings only while this directory's modules run, so other suites see their own.
PRELABEL_ENV = {
    "PRELABEL_MODEL_DIR": str(MODEL_DIR),
    "PRELABEL_SAM_MODEL": "tiny.pth",
    "PRELABEL_SAM_DEVICE": "cpu",
}


@pytest.fixture(scope="module", autouse=True)
def _prelabel_env() -> Iterator[None]:
    with mock.patch.dict(os.environ, PRELABEL_ENV):
        yield


@pytest.fixture(scope="session", autouse=True)
def _tiny_checkpoint() -> None:
    # A fixture, not pytest_sessionstart: this conftest may be collected late in a whole run.
    save_checkpoint(MODEL_DIR / "tiny.pth")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return MODEL_DIR


@pytest.fixture
def backend() -> SamBackend:
    """A loaded backend on the tiny checkpoint, with its own embedding cache."""
    sam = SamBackend(SamBackend.load_settings())
    sam.load()
    yield sam
    sam.prefetcher.close()
