"""``load()`` leaves every model warm and torch on the process's threads, through ultralytics' resets.

Checked in a fresh interpreter (this one has imported everything already) by what the first
request does after ``load()``: it must set nothing up (no new predictor, no device selection,
no lazy imports) and run on the backend's thread count, in a thread that never ran torch
before, as a gunicorn request thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from prelabel_yolo.models import ModelCache
from prelabel_yolo.warmup import keep_threads

PROBE = """
import json, sys, threading
import numpy as np
import ultralytics.engine.predictor as predictor_module
from ultralytics.utils import NUM_THREADS
from prelabel.testing import make_context
from prelabel_yolo import YoloBackend
from prelabel_yolo.synthetic import data_uri, shapes_image

backend = YoloBackend()
backend.threads = NUM_THREADS + 1  # not what ultralytics sets
backend.load()
model = backend.models.base(backend.settings.detect_model)
predictor = model.yolo.predictor
setups = []
select_device = predictor_module.select_device
predictor_module.select_device = lambda *a, **k: setups.append(a) or select_device(*a, **k)
png, _ = shapes_image(np.random.default_rng(0), 640, 480, ["red"])
config = '<View><Image name="i" value="$image"/><RectangleLabels name="l" toName="i">' \\
    '<Label value="person"/></RectangleLabels></View>'
ctx = make_context(backend, config, media=sys.argv[1])
seen = {}

def first_request():
    import torch
    seen["threads_before"] = torch.get_num_threads()
    before = set(sys.modules)
    backend.predict([{"id": 1, "data": {"image": data_uri(png)}}], ctx)
    seen["imported"] = sorted(m for m in set(sys.modules) - before if m.startswith("torch"))
    seen["threads_after"] = torch.get_num_threads()

thread = threading.Thread(target=first_request)
thread.start()
thread.join()
print(json.dumps({
    "threads": backend.threads,
    "predictor_ready": predictor is not None,
    "same_predictor": model.yolo.predictor is predictor,
    "device_selections": len(setups),
    **seen,
}))
"""


def test_load_leaves_the_model_warm_on_the_process_threads(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    threads = found["threads"]
    assert found["predictor_ready"] and found["same_predictor"], found
    assert found["device_selections"] == 0, found  # ultralytics set nothing up on the request
    assert found["imported"] == [], found  # torchvision, torch._dynamo: imported by load()
    assert found["threads_before"] == found["threads_after"] == threads, found


def test_each_model_is_prepared_once_when_it_loads(model_dir: Path) -> None:
    prepared: list[object] = []
    cache = ModelCache(model_dir, max_tuned=1, prepare=lambda yolo, _: prepared.append(yolo))
    base = cache.base("coco-random.pt")
    tuned = cache.tuned(model_dir / "coco-random-seg.pt")
    cache.base("coco-random.pt")
    cache.tuned(model_dir / "coco-random-seg.pt")
    assert prepared == [base.yolo, tuned.yolo]


def test_ultralytics_runs_put_the_threads_back() -> None:
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import NUM_THREADS

    before = torch.get_num_threads()
    yolo = YOLO("yolov8n.yaml")
    keep_threads(yolo, NUM_THREADS + 1)
    try:
        yolo.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)  # a new predictor
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(before)
