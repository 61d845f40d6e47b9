"""Offline test environment: no downloads, weights built locally under a temp PRELABEL_MODEL_DIR."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from prelabel_yolo import YoloBackend

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


@pytest.fixture(scope="session", autouse=True)
def _random_weights() -> None:
    # Untrained weights with COCO class names stand in for yolov8n.pt / yolov8n-seg.pt.
    # A fixture, not pytest_sessionstart: that hook only runs for conftests pytest loads at
    # start-up, and this one is collected late when the whole repository's tests run.
    _random_coco("yolov8n.yaml", "coco-random.pt")
    _random_coco("yolov8n-seg.yaml", "coco-random-seg.pt")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return MODEL_DIR


#: One control detecting the red rectangles of :func:`prelabel_yolo.synthetic.shapes_image`.
SHAPES = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image"><Label value="red"/></RectangleLabels></View>"""


class Trained(NamedTuple):
    backend: YoloBackend
    version_dir: Path
    metrics: dict[str, float]
    config: str
    #: torch's thread count at the start of each epoch, and after ``fit`` returned.
    threads_seen: set[int]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A detector trained by ``fit`` from random weights on synthetic red rectangles.

    Session-scoped: the image and video tests share it (training takes about a minute).
    Its weights are ``version_dir / "label.pt"``.
    """
    import torch
    from ultralytics.utils import NUM_THREADS
    from ultralytics.utils.callbacks import base

    from prelabel.testing import make_train_job
    from prelabel_yolo.synthetic import box_result, data_uri, shapes_image

    tmp = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in PRELABEL_ENV.items():
            patch.setenv(key, value)
        backend = YoloBackend(
            YoloBackend.load_settings(
                detect_model="yolov8n.yaml",
                preload=[],
                epochs=50,
                train_imgsz=96,
                train_batch=32,
                train_options={
                    "mosaic": 0.0,
                    "warmup_epochs": 0,
                    "optimizer": "AdamW",
                    "lr0": 0.003,
                    "seed": 0,
                },
            )
        )
        backend.threads = NUM_THREADS + 1  # not what ultralytics sets
        seen: set[int] = set()
        epoch_starts = base.default_callbacks["on_train_epoch_start"]
        patch.setitem(  # every YOLO object built from now on reports its epochs
            base.default_callbacks,
            "on_train_epoch_start",
            [*epoch_starts, lambda _: seen.add(torch.get_num_threads())],
        )
        backend.load()
        rng = np.random.default_rng(1)
        tasks = []
        for i in range(70):
            png, shapes = shapes_image(rng, 96, 72, ["red"])
            tasks.append(
                {"id": i, "data": {"image": data_uri(png)},
                 "annotations": [{"id": i, "result": box_result(shapes, (96, 72))}]}
            )  # fmt: skip
        job = make_train_job(
            backend, SHAPES, tasks[:63], holdout=tasks[63:], workdir=tmp / "v1", media=tmp
        )
        result = backend.fit(job)
        seen.add(torch.get_num_threads())
    assert result is not None
    return Trained(backend, job.workdir, dict(result.metrics), SHAPES, seen)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `trained` is charged to the first test that asks for it: about a minute of training,
    # ten on a 2-core machine busy with other jobs (the suite's 300 s limit was hit there).
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(900))
