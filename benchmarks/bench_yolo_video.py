"""YOLO VideoRectangle tracking throughput: the backend versus ultralytics' own ``track()``.

Random-init yolov8n (built offline from ultralytics' yaml, COCO names) on a synthetic
640x480 MJPG video (a red rectangle moving over noise): frames/s of ``YoloBackend.predict``
for one task (fetch through core's media resolver, probe, track, convert) versus
``YOLO.track(stream=True)`` in-process on the same file, weights and tracker, alternating
in the same run. Random weights find nothing, so this measures the per-frame overhead the
backend adds around inference and the tracker, not tracking quality (the tests check that).

Run: ``.venv/bin/python benchmarks/bench_yolo_video.py [--frames 200 --rounds 2]``; writes
``benchmarks/results/yolo_video.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from _yolo import ROOT, coco_random_weights

CONFIG = """<View><Video name="video" value="$video" framerate="25"/>
<VideoRectangle name="box" toName="video"/>
<Labels name="tag" toName="video"><Label value="Person" predicted_values="person"/></Labels></View>"""


def _prepare(frames: int) -> Path:
    import numpy as np

    from prelabel_yolo.synthetic import moving_box_video

    coco_random_weights()
    path = ROOT / "video.avi"
    moving_box_video(
        np.random.default_rng(0),
        path,
        frames=frames,
        size=(640, 480),
        fps=25.0,
        start=(20, 40, 180, 160),
        step=(2.0, 1.0),
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    video = _prepare(args.frames)

    from ultralytics import YOLO
    from ultralytics.utils import ROOT as UROOT

    from prelabel import CoreSettings
    from prelabel.media import MediaResolver
    from prelabel.testing import make_context
    from prelabel_yolo import YoloBackend

    backend = YoloBackend(YoloBackend.load_settings(batch_size=1))
    backend.load()
    settings = CoreSettings(model_dir=ROOT / "models", local_files_root=ROOT)
    ctx = make_context(backend, CONFIG, media=MediaResolver(settings), model_version="bench")
    task = {"id": 1, "data": {"video": f"/data/local-files/?d={video.name}"}}
    direct = YOLO(str(ROOT / "models" / "coco-random.pt"))
    tracker = str(UROOT / "cfg" / "trackers" / "bytetrack.yaml")

    def run_backend() -> None:
        backend.predict([task], ctx)

    def run_direct() -> None:
        for _ in direct.track(
            source=str(video), stream=True, tracker=tracker, conf=0.1, verbose=False, imgsz=640
        ):
            pass

    run_backend(), run_direct()  # warm-up: predictor set-up, first decode
    timings: dict[str, list[float]] = {"backend": [], "ultralytics": []}
    runs = (("backend", run_backend), ("ultralytics", run_direct))
    for r in range(args.rounds):
        for name, fn in runs if r % 2 == 0 else runs[::-1]:  # ABBA: no order bias
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    fps = {name: args.frames / min(values) for name, values in timings.items()}
    figures: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU",
        "frames": args.frames,
        "frame_size": [640, 480],
        "backend_frames_per_s": round(fps["backend"], 2),
        "ultralytics_track_frames_per_s": round(fps["ultralytics"], 2),
        "ratio": round(fps["backend"] / fps["ultralytics"], 3),
        "rounds": args.rounds,
    }
    print(json.dumps(figures, indent=2))
    out = Path(__file__).parent / "results" / "yolo_video.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
