"""`prelabel serve yolo` with weights that are not there: one line before gunicorn starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_missing_weights_stop_the_start_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELABEL_")}
    env.update(
        PRELABEL_MODEL_DIR=str(tmp_path),
        PRELABEL_YOLO_DETECT_MODEL="custom/best.pt",
        # A fresh one: ultralytics announces the settings file it creates on first import.
        YOLO_CONFIG_DIR=str(tmp_path / "ultralytics"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "prelabel", "serve", "yolo", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        f"Error: Model weights 'custom/best.pt' not found at {tmp_path}/custom/best.pt, and it "
        "is not a weights file ultralytics publishes. Put the file there "
        f"(PRELABEL_MODEL_DIR={tmp_path}) or name other weights in model_path / "
        "PRELABEL_YOLO_*_MODEL."
    )
    # ultralytics' notice came from the load's child, whose output is held back on failure.
    assert (tmp_path / "ultralytics").is_dir()
    assert proc.stdout == ""
