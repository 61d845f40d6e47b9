"""YOLO backend throughput, threshold fidelity and memory (issue 5 figures).

Random-init yolov8n (built offline from ultralytics' yaml) on 64 synthetic 640x480 images:

* images/s through ``/predict`` (one 64-task request, and one task per request) versus
  ultralytics in-process, one image at a time, alternating in the same run;
* batched (``batch_size`` 8) versus one image per forward pass, through ``predict``;
* boxes returned at ``model_score_threshold`` t versus ultralytics at ``conf=t``;
* peak RSS of a server process for a one-control config, after 1 and after 10 projects.

Run: ``.venv/bin/python benchmarks/bench_yolo.py [--rounds 2]``; writes
``benchmarks/results/yolo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(tempfile.mkdtemp(prefix="bench-yolo-"))
os.environ.update(
    YOLO_OFFLINE="1",
    YOLO_AUTOINSTALL="false",
    YOLO_CONFIG_DIR=str(ROOT / "ultralytics"),
    PRELABEL_MODEL_DIR=str(ROOT / "models"),
    PRELABEL_YOLO_DETECT_MODEL="coco-random.pt",
)

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image" model_score_threshold="{conf}">
  <Label value="Person" predicted_values="person"/><Label value="Vehicle" predicted_values="car,truck,bus"/>
</RectangleLabels></View>"""


def _prepare(n: int) -> list[Path]:
    import numpy as np
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT as UROOT

    from prelabel_yolo.synthetic import shapes_image

    (ROOT / "models").mkdir(parents=True, exist_ok=True)
    model = YOLO("yolov8n.yaml")
    names = yaml.safe_load((UROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    model.model.names = dict(names)
    model.save(ROOT / "models" / "coco-random.pt")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        png, _ = shapes_image(rng, 640, 480, ["red", "blue"])
        path = ROOT / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(png)
        paths.append(path)
    return paths


def _server_rss(n_projects: int) -> float:
    """Peak RSS (MiB) of a fresh process serving /setup + /predict for n projects."""
    code = f"""
import json, resource, base64
from pathlib import Path
from prelabel import CoreSettings
from prelabel._server import create_app
from prelabel_yolo import YoloBackend
backend = YoloBackend()
app = create_app(backend, CoreSettings(model_dir=Path({str(ROOT / "state")!r}), job_runner="external"), start_jobs=False)
client = app.test_client()
uri = "data:image/png;base64," + base64.b64encode(Path({str(ROOT / "images" / "0.png")!r}).read_bytes()).decode()
for p in range({n_projects}):
    schema = {CONFIG.format(conf=0.25)!r}
    assert client.post("/setup", json={{"project": f"{{p+1}}.1700000000", "schema": schema}}).status_code == 200
    r = client.post("/predict", json={{"project": f"{{p+1}}.1700000000", "label_config": schema,
                    "tasks": [{{"id": 1, "data": {{"image": uri}}}}]}})
    assert r.status_code == 200, r.data
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({{"rss": int(hwm.split()[1]) / 1024,
                  "models": len(backend.models.loaded)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data["rss"] if data["models"] == 1 else -data["rss"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    paths = _prepare(args.images)

    import base64

    from ultralytics import YOLO

    from prelabel import CoreSettings
    from prelabel._server import create_app
    from prelabel.config import LabelConfig
    from prelabel_yolo import YoloBackend

    uris = ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in paths]
    tasks = [{"id": i + 1, "data": {"image": u}} for i, u in enumerate(uris)]
    backend = YoloBackend()
    app = create_app(
        backend,
        CoreSettings(model_dir=ROOT / "state", job_runner="external"),
        start_jobs=False,
    )
    client = app.test_client()
    schema = CONFIG.format(conf=0.25)
    client.post("/setup", json={"project": "1.1700000000", "schema": schema})
    direct = YOLO(str(ROOT / "models" / "coco-random.pt"))
    direct.predict(str(paths[0]), verbose=False)  # warm-up, as the server's first request

    def one_request() -> float:
        t = time.perf_counter()
        r = client.post(
            "/predict", json={"project": "1.1700000000", "label_config": schema, "tasks": tasks}
        )
        assert r.status_code == 200 and len(r.get_json()["results"]) == len(tasks)
        return len(tasks) / (time.perf_counter() - t)

    def per_task() -> float:
        t = time.perf_counter()
        for task in tasks:
            r = client.post(
                "/predict",
                json={"project": "1.1700000000", "label_config": schema, "tasks": [task]},
            )
            assert r.status_code == 200
        return len(tasks) / (time.perf_counter() - t)

    def ultralytics_alone() -> float:
        t = time.perf_counter()
        for path in paths:
            direct.predict(str(path), conf=0.25, verbose=False)
        return len(paths) / (time.perf_counter() - t)

    def through_predict(batch: int) -> float:
        settings = backend.load_settings(batch_size=batch)
        from prelabel import Context, ProjectKey
        from prelabel.media import MediaResolver

        ctx = Context(
            project=ProjectKey("1", 1),
            label_config=LabelConfig.parse(schema),
            model_version="b",
            model_dir=None,
            settings=settings,
            extra_params={},
            media=MediaResolver(CoreSettings(model_dir=ROOT / "state")),
        )
        t = time.perf_counter()
        backend.predict(tasks, ctx)
        return len(tasks) / (time.perf_counter() - t)

    rows: dict[str, list[float]] = {
        k: [] for k in ("request", "ultra1", "per_task", "ultra2", "b8", "b1")
    }
    for _ in range(args.rounds):
        rows["request"].append(one_request())
        rows["ultra1"].append(ultralytics_alone())
        rows["per_task"].append(per_task())
        rows["ultra2"].append(ultralytics_alone())
        rows["b8"].append(through_predict(8))
        rows["b1"].append(through_predict(1))
    best = {k: max(v) for k, v in rows.items()}
    ultra = max(best["ultra1"], best["ultra2"])

    counts: dict[str, dict[str, int]] = {}
    for conf in (0.1, 1e-5):
        xml = CONFIG.format(conf=conf).replace(
            'predicted_values="person"',
            'predicted_values="' + ",".join(direct.names.values()) + '"',
        )
        from prelabel import Context, ProjectKey
        from prelabel.media import MediaResolver

        ctx = Context(
            project=ProjectKey("1", 1), label_config=LabelConfig.parse(xml), model_version="c",
            model_dir=None, settings=backend.settings, extra_params={},
            media=MediaResolver(CoreSettings(model_dir=ROOT / "state")),
        )  # fmt: skip
        ours = sum(len(p.result) for p in backend.predict(tasks[:16], ctx))  # type: ignore[union-attr]
        theirs = sum(
            len(direct.predict(str(p), conf=conf, verbose=False)[0].boxes) for p in paths[:16]
        )
        counts[str(conf)] = {"backend": ours, "ultralytics": theirs}

    rss1, rss10 = _server_rss(1), _server_rss(10)
    figures: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "images": len(paths),
        "images_per_s": {
            "predict_one_request": round(best["request"], 2),
            "predict_one_task_per_request": round(best["per_task"], 2),
            "ultralytics_in_process_one_at_a_time": round(ultra, 2),
            "ratio_one_request": round(best["request"] / ultra, 3),
            "ratio_one_task_per_request": round(best["per_task"] / ultra, 3),
        },
        "batch_size": {"8": round(best["b8"], 2), "1": round(best["b1"], 2)},
        "boxes_16_images": counts,
        "peak_rss_mib": {"1_project": round(abs(rss1), 1), "10_projects": round(abs(rss10), 1),
                         "one_model_copy": rss1 > 0 and rss10 > 0},
        "rounds": args.rounds,
        "bench_process_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    out = Path(__file__).parent / "results" / "yolo.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
