"""Ultralytics in a process of its own, one image at a time: the baselines of bench_yolo.

``python _ultralytics_alone.py WEIGHTS THREADS`` loads the weights, predicts once (ultralytics
sets up its predictor, and with it ``cpu_count - 1`` torch threads), then sets ``THREADS`` torch
threads unless it is ``default``. Each line read from stdin is a JSON list of image paths;
the answer is one line, the images/s of predicting them one at a time. The environment
(``OMP_WAIT_POLICY``…) is the caller's: a process of its own gives each baseline its own.
"""

from __future__ import annotations

import json
import sys
import time


def main(weights: str, threads: str) -> None:
    import numpy as np
    import torch
    from ultralytics import YOLO

    model = YOLO(weights)
    model.predict(np.zeros((480, 640, 3), np.uint8), verbose=False)
    if threads != "default":
        torch.set_num_threads(int(threads))
    print("ready", flush=True)
    for line in sys.stdin:
        paths = json.loads(line)
        started = time.perf_counter()
        for path in paths:
            model.predict(path, conf=0.25, verbose=False)
        print(len(paths) / (time.perf_counter() - started), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
