"""Shared set-up of the YOLO benchmarks: an offline ultralytics and random-init COCO weights.

Importing this module points ultralytics and prelabel at a fresh temporary directory
(:data:`ROOT`) before either is imported, so nothing is downloaded or read from the user's
settings, and makes torch's threads wait as in the processes ``prelabel`` starts
(``OMP_WAIT_POLICY=PASSIVE``, :mod:`prelabel.threads`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(tempfile.mkdtemp(prefix="bench-yolo-"))
os.environ.update(
    YOLO_OFFLINE="1",
    YOLO_AUTOINSTALL="false",
    YOLO_CONFIG_DIR=str(ROOT / "ultralytics"),
    PRELABEL_MODEL_DIR=str(ROOT / "models"),
    PRELABEL_YOLO_DETECT_MODEL="coco-random.pt",
)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def coco_random_weights() -> Path:
    """``ROOT/models/coco-random.pt``: yolov8n from ultralytics' yaml, untrained, COCO names."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT as ULTRALYTICS

    target = ROOT / "models" / "coco-random.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    model = YOLO("yolov8n.yaml")
    coco = yaml.safe_load((ULTRALYTICS / "cfg" / "datasets" / "coco.yaml").read_text())
    model.model.names = dict(coco["names"])
    model.save(target)
    return target
