"""YOLO backend throughput, batch size, threshold fidelity and memory (issue 5 figures).

Random-init yolov8n (built offline from ultralytics' yaml, COCO names) on 64 synthetic
640x480 PNG images:

* images/s through ``prelabel serve yolo`` over HTTP (one 64-task ``/predict``, and one task
  per request) versus ultralytics in-process on the same files and weights, one image at a
  time, alternating round by round in the same run (ratio: median over rounds of each
  round's ratio);
* ``predict()`` in-process with batch sizes 1, 2, 4 and 8, in a shuffled order each round;
* boxes returned at ``model_score_threshold`` t versus ultralytics at ``conf=t``, on a copy
  of the weights whose class biases are raised so that scores straddle 0.1 and 0.25 (random
  weights find nothing at 0.1);
* peak RSS of a serving process for a one-control config, after 1 and after 10 projects.

Run: ``.venv/bin/python benchmarks/bench_yolo.py [--rounds 5]``; writes
``benchmarks/results/yolo.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _serving import served
from _yolo import ROOT, coco_random_weights

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image" model_score_threshold="{conf}">
  <Label value="Person" predicted_values="{person}"/><Label value="Vehicle" predicted_values="car,truck,bus"/>
</RectangleLabels></View>"""
PROJECT = "1.1700000000"


def _images(n: int) -> list[Path]:
    import numpy as np

    from prelabel_yolo.synthetic import shapes_image

    rng = np.random.default_rng(0)
    (ROOT / "images").mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        png, _ = shapes_image(rng, 640, 480, ["red", "blue"])
        path = ROOT / "images" / f"{i}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def _eager_weights(shift: float = 9.0) -> str:
    """coco-random.pt with every class logit raised by ``shift``: scores around 0.1-0.3."""
    from ultralytics import YOLO

    model = YOLO(str(ROOT / "models" / "coco-random.pt"))
    for branch in model.model.model[-1].cv3:
        branch[-1].bias.data += shift
    model.save(ROOT / "models" / "coco-eager.pt")
    return "coco-eager.pt"


def _tasks(paths: list[Path]) -> list[dict[str, Any]]:
    uris = ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in paths]
    return [{"id": i + 1, "data": {"image": uri}} for i, uri in enumerate(uris)]


def _rate(count: int, call: Any) -> float:
    started = time.perf_counter()
    call()
    return count / (time.perf_counter() - started)


def throughput(paths: list[Path], rounds: int) -> dict[str, Any]:
    """HTTP /predict vs ultralytics in-process, alternating."""
    from ultralytics import YOLO

    tasks = _tasks(paths)
    schema = CONFIG.format(conf=0.25, person="person")
    direct = YOLO(str(ROOT / "models" / "coco-random.pt"))
    direct.predict(str(paths[0]), verbose=False)  # warm-up, as the server's first request

    def ultralytics_alone() -> None:
        for path in paths:
            direct.predict(str(path), conf=0.25, verbose=False)

    rows: dict[str, list[float]] = {"request": [], "per_task": [], "ultra_a": [], "ultra_b": []}
    with served("yolo", {}) as server:
        client = server.client
        client.post("/setup", json={"project": PROJECT, "schema": schema}).raise_for_status()
        whole = json.dumps({"project": PROJECT, "label_config": schema, "tasks": tasks}).encode()
        singles = [
            json.dumps({"project": PROJECT, "label_config": schema, "tasks": [t]}).encode()
            for t in tasks
        ]
        headers = {"content-type": "application/json"}

        def one_request() -> None:
            response = client.post("/predict", content=whole, headers=headers)
            response.raise_for_status()
            assert len(response.json()["results"]) == len(tasks)

        def one_task_per_request() -> None:
            for body in singles:
                client.post("/predict", content=body, headers=headers).raise_for_status()

        one_request()  # warm-up: first decode, media cache, predictor set-up
        for _ in range(rounds):
            rows["request"].append(_rate(len(tasks), one_request))
            rows["ultra_a"].append(_rate(len(paths), ultralytics_alone))
            rows["per_task"].append(_rate(len(tasks), one_task_per_request))
            rows["ultra_b"].append(_rate(len(paths), ultralytics_alone))

    def ratio(ours: str, theirs: str) -> float:
        return statistics.median(o / t for o, t in zip(rows[ours], rows[theirs], strict=True))

    return {
        "median_images_per_s": {k: round(statistics.median(v), 2) for k, v in rows.items()},
        "ratio_one_request": round(ratio("request", "ultra_a"), 3),
        "ratio_one_task_per_request": round(ratio("per_task", "ultra_b"), 3),
        "rounds": {k: [round(x, 2) for x in v] for k, v in rows.items()},
    }


def batch_sizes(paths: list[Path], rounds: int, sizes: tuple[int, ...]) -> dict[str, float]:
    """Median images/s of ``predict()`` per batch size, sizes shuffled each round."""
    from prelabel.testing import make_context
    from prelabel_yolo import YoloBackend

    backend = YoloBackend()
    backend.load()
    tasks = _tasks(paths)
    schema = CONFIG.format(conf=0.25, person="person")
    contexts = {
        size: make_context(backend, schema, media=ROOT, extra_params={"batch_size": size})
        for size in sizes
    }
    backend.predict(tasks[:2], contexts[sizes[0]])
    rates: dict[int, list[float]] = {size: [] for size in sizes}
    order = random.Random(0)
    for _ in range(rounds):
        shuffled = list(sizes)
        order.shuffle(shuffled)
        for size in shuffled:
            rates[size].append(
                _rate(len(tasks), lambda size=size: backend.predict(tasks, contexts[size]))
            )
    return {str(size): round(statistics.median(v), 2) for size, v in rates.items()}


def threshold_fidelity(paths: list[Path], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Boxes the backend returns at model_score_threshold t vs ultralytics at conf=t."""
    from ultralytics import YOLO

    from prelabel.testing import make_context
    from prelabel_yolo import YoloBackend

    weights = _eager_weights()
    backend = YoloBackend(YoloBackend.Settings(detect_model=weights, preload=[]))
    direct = YOLO(str(ROOT / "models" / weights))
    every_class = ",".join(direct.names.values())
    tasks = _tasks(paths)
    counts: dict[str, dict[str, int]] = {}
    for conf in thresholds:
        ctx = make_context(backend, CONFIG.format(conf=conf, person=every_class), media=ROOT)
        ours = sum(len(p.result) for p in backend.predict(tasks, ctx))  # type: ignore[union-attr]
        theirs = sum(len(direct.predict(str(p), conf=conf, verbose=False)[0].boxes) for p in paths)
        counts[str(conf)] = {"backend": ours, "ultralytics": theirs}
    return counts


def _server_rss(n_projects: int, image: Path) -> tuple[float, int]:
    """Peak RSS (MiB) of a fresh serving process after /setup + /predict for n projects."""
    code = f"""
import base64, json
from pathlib import Path
from prelabel import CoreSettings
from prelabel._server import create_app
from prelabel_yolo import YoloBackend
backend = YoloBackend()
app = create_app(backend, CoreSettings(model_dir=Path({str(ROOT / "state")!r}), job_runner="external"), start_jobs=False)
client = app.test_client()
uri = "data:image/png;base64," + base64.b64encode(Path({str(image)!r}).read_bytes()).decode()
schema = {CONFIG.format(conf=0.25, person="person")!r}
for p in range({n_projects}):
    key = f"{{p + 1}}.1700000000"
    assert client.post("/setup", json={{"project": key, "schema": schema}}).status_code == 200
    r = client.post("/predict", json={{"project": key, "label_config": schema,
                    "tasks": [{{"id": 1, "data": {{"image": uri}}}}]}})
    assert r.status_code == 200, r.data
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"rss": int(hwm.split()[1]) / 1024, "models": len(backend.models.loaded)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return round(float(data["rss"]), 1), int(data["models"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    coco_random_weights()
    paths = _images(args.images)

    rss1, models1 = _server_rss(1, paths[0])
    rss10, models10 = _server_rss(10, paths[0])
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
        "images": len(paths),
        "http_vs_ultralytics": throughput(paths, args.rounds),
        "predict_images_per_s_by_batch_size": batch_sizes(paths, args.rounds, (1, 2, 4, 8)),
        "boxes_by_threshold": threshold_fidelity(paths[:16], (0.1, 0.25)),
        "peak_rss_mib": {"1_project": rss1, "10_projects": rss10,
                         "models_loaded": {"1_project": models1, "10_projects": models10}},
        "rounds": args.rounds,
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    out = Path(__file__).parent / "results" / "yolo.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
