"""Make a loaded ultralytics model ready: torch on the process's threads, first inference done.

Ultralytics sets ``torch.set_num_threads(cpu_count - 1)`` whenever it sets up a predictor,
trainer or validator (one thread on a 2-core machine, in whichever thread set it up), and its
first ``predict`` imports torchvision and ``torch._dynamo`` and fuses the model's layers (about a
second). :func:`keep_threads` puts the process's count back at the start of every predict,
training and validation run; :func:`warm_up` pays the first-call costs at load time, so a
server answering ``/health`` answers its first ``/predict`` at full speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prelabel.threads import use_torch_threads

__all__ = ["keep_threads", "warm_up"]

#: Ultralytics events that start a run, each after the set-up that resets torch's threads.
_RUN_STARTS = ("on_predict_start", "on_pretrain_routine_start", "on_val_start")


def keep_threads(yolo: Any, threads: int) -> None:
    """Run every predict, training and validation of ``yolo`` on ``threads`` torch threads."""

    def restore(_: Any) -> None:
        use_torch_threads(threads)

    for event in _RUN_STARTS:
        yolo.add_callback(event, restore)


def warm_up(yolo: Any, imgsz: int, device: str = "") -> None:
    """One inference on a blank image ``imgsz`` wide and 3/4 as high (a 4:3 photo's shape)."""
    blank = np.zeros((imgsz * 3 // 4, imgsz, 3), np.uint8)
    options: dict[str, Any] = {"device": device} if device else {}
    yolo.predict(blank, imgsz=imgsz, verbose=False, **options)
