"""Offline test environment: no downloads, weights built locally under a temp PRELABEL_MODEL_DIR."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="prelabel-yolo-tests-"))
MODEL_DIR = _ROOT / "models"
MODEL_DIR.mkdir()
# Set before ultralytics is imported: it reads YOLO_CONFIG_DIR at import time.
os.environ.update(
    YOLO_OFFLINE="1",
    HF_HUB_OFFLINE="1",
    YOLO_AUTOINSTALL="false",
    YOLO_CONFIG_DIR=str(_ROOT / "ultralytics"),
)
# prelabel settings only while this directory's modules run, so other suites see their own.
PRELABEL_ENV = {
    "PRELABEL_MODEL_DIR": str(MODEL_DIR),
    "PRELABEL_YOLO_DETECT_MODEL": "coco-random.pt",
    "PRELABEL_YOLO_SEGMENT_MODEL": "coco-random-seg.pt",
}


@pytest.fixture(scope="module", autouse=True)
def _prelabel_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in PRELABEL_ENV.items():
            patch.setenv(key, value)
        yield


def _random_coco(arch: str, name: str) -> None:
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    model = YOLO(arch)
    model.model.names = dict(names)
    model.save(MODEL_DIR / name)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Untrained weights with COCO class names stand in for yolov8n.pt / yolov8n-seg.pt.
    _random_coco("yolov8n.yaml", "coco-random.pt")
    _random_coco("yolov8n-seg.yaml", "coco-random-seg.pt")


@pytest.fixture
def model_dir() -> Path:
    return MODEL_DIR
