"""OpenVINO as the CPU runtime: the same regions as PyTorch, exported once, on the process's
threads in 32 bits, PyTorch where OpenVINO cannot run, and no telemetry sent."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prelabel import BackendLoadError
from prelabel.testing import make_context
from prelabel_yolo import YoloBackend, runtimes
from prelabel_yolo.models import ModelCache
from prelabel_yolo.synthetic import data_uri, shapes_image


def _regions(backend: YoloBackend, trained: Any, tmp_path: Path) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(7)  # images the model has never seen
    tasks = [
        {"id": i, "data": {"image": data_uri(shapes_image(rng, 96, 72, ["red"])[0])}}
        for i in range(6)
    ]
    ctx = make_context(backend, trained.config, media=tmp_path, model_dir=trained.version_dir)
    ctx.settings = backend.load_settings(imgsz=96)
    found = []
    for prediction in backend.predict(tasks, ctx):
        regions = [{**r.value, "score": r.score} for r in prediction.result]
        found.append(sorted(regions, key=lambda v: (v["x"], v["y"])))
    return found


def test_openvino_finds_the_regions_pytorch_finds(trained: Any, tmp_path: Path) -> None:
    assert trained.backend.models.runtime == "openvino"  # auto, on a CPU
    torch_backend = YoloBackend(YoloBackend.load_settings(runtime="torch", preload=[]))
    torch_backend.load()
    assert torch_backend.models.runtime == "torch"
    served = _regions(trained.backend, trained, tmp_path)
    reference = _regions(torch_backend, trained, tmp_path)
    assert sum(map(len, reference)) >= 6  # the trained model finds the rectangles
    for ours, theirs in zip(served, reference, strict=True):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert a["rectanglelabels"] == b["rectanglelabels"]
            for key in ("x", "y", "width", "height"):
                assert a[key] == pytest.approx(b[key], abs=1e-3)  # percent of the image
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_the_served_model_is_compiled_in_32_bits_on_the_process_threads(
    trained: Any, tmp_path: Path
) -> None:
    _regions(trained.backend, trained, tmp_path)
    loaded = trained.backend.models.tuned(trained.version_dir / "label.pt")
    assert loaded.runtime == "openvino"
    compiled = loaded.yolo.predictor.model.backend.ov_compiled_model
    assert compiled.get_property("INFERENCE_NUM_THREADS") == trained.backend.threads
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"


def test_a_weights_file_is_exported_once_even_by_racing_processes(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "racer.pt"
    shutil.copyfile(model_dir / "coco-random.pt", weights)
    exports = []
    real_export = runtimes._export

    def counted(path: Path) -> Path:
        exports.append(path)
        return real_export(path)

    monkeypatch.setattr(runtimes, "_export", counted)
    cache = tmp_path / runtimes.CACHE_DIR
    for name, age in ((".export-killed", runtimes.EXPORT_TIMEOUT + 60), (".export-running", 0)):
        (cache / name).mkdir(parents=True)
        stamp = time.time() - age
        os.utime(cache / name, (stamp, stamp))
    found: list[Path] = []
    racers = [
        threading.Thread(target=lambda: found.append(runtimes.export_openvino(weights, tmp_path)))
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(found) == 2 and found[0] == found[1]
    assert found[0].name.startswith("racer-") and found[0].name.endswith("_openvino_model")
    assert (found[0] / "metadata.yaml").is_file()
    # Both raced into their own directory; neither is left behind, nor one a killed process
    # left, while another process's export in progress stays.
    assert sorted(p.name for p in cache.iterdir()) == [".export-running", found[0].name]
    assert runtimes.export_openvino(weights, tmp_path) == found[0]
    assert len(exports) == 2  # the third call found the export
    weights.write_bytes(weights.read_bytes() + b"\0")  # other content: another export
    assert runtimes.export_openvino(weights, tmp_path) != found[0]


def test_runtime_follows_the_setting_and_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtimes, "_cuda_available", lambda: False)
    assert runtimes.choose_runtime("auto", "") == "openvino"
    assert runtimes.choose_runtime("auto", "cpu") == "openvino"
    assert runtimes.choose_runtime("auto", "0") == "torch"
    assert runtimes.choose_runtime("torch", "") == "torch"
    with pytest.raises(BackendLoadError, match="device is 0: set PRELABEL_YOLO_DEVICE=cpu"):
        runtimes.choose_runtime("openvino", "0")
    monkeypatch.setattr(runtimes, "_cuda_available", lambda: True)
    assert runtimes.choose_runtime("auto", "") == "torch"  # ultralytics would pick the GPU
    assert runtimes.choose_runtime("auto", "cpu") == "openvino"
    monkeypatch.setattr(runtimes, "_openvino_installed", lambda: False)
    assert runtimes.choose_runtime("auto", "cpu") == "torch"
    with pytest.raises(BackendLoadError, match="needs the openvino package"):
        runtimes.choose_runtime("openvino", "cpu")


def test_weights_that_cannot_be_exported_are_served_by_pytorch_unless_openvino_was_asked(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def refuse(path: Path) -> Path:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(runtimes, "_export", refuse)
    weights = tmp_path / "odd.pt"
    shutil.copyfile(model_dir / "coco-random.pt", weights)
    with caplog.at_level(logging.WARNING, logger="prelabel_yolo.models"):
        loaded = ModelCache(tmp_path, 1, lambda *_: None, "auto", "cpu").tuned(weights)
    assert loaded.runtime == "torch" and loaded.task == "detect"
    assert f"Could not export {weights} to OpenVINO: unsupported operator" in caplog.text
    assert "Serving it with PyTorch" in caplog.text
    strict = ModelCache(tmp_path, 1, lambda *_: None, "openvino", "cpu")
    with pytest.raises(BackendLoadError, match=r"Could not export .* unsupported operator"):
        strict.tuned(weights)


def test_an_unwritable_cache_is_a_load_error_that_auto_serves_with_pytorch(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: Any, **kwargs: Any) -> str:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(runtimes.tempfile, "mkdtemp", read_only)
    weights = tmp_path / "ro.pt"
    shutil.copyfile(model_dir / "coco-random.pt", weights)
    with pytest.raises(BackendLoadError, match=r"Could not export .*ro\.pt .*Read-only file"):
        runtimes.export_openvino(weights, tmp_path)
    loaded = ModelCache(tmp_path, 1, lambda *_: None, "auto", "cpu").tuned(weights)
    assert loaded.runtime == "torch"


def test_an_architecture_name_is_a_pytorch_model(model_dir: Path) -> None:
    cache = ModelCache(model_dir, 1, lambda *_: None, "openvino", "cpu")
    assert cache.base("yolov8n.yaml").runtime == "torch"  # new random weights each load


def test_openvino_sends_no_telemetry(model_dir: Path, tmp_path: Path) -> None:
    # OpenVINO's telemetry writes a client id under $HOME/intel before it sends anything.
    home = tmp_path / "home"
    home.mkdir()
    weights = tmp_path / "w.pt"
    shutil.copyfile(model_dir / "coco-random.pt", weights)
    code = (
        "import sys; from pathlib import Path; from prelabel_yolo import runtimes;"
        "import openvino;"
        f"runtimes.export_openvino(Path({str(weights)!r}), Path({str(tmp_path)!r}));"
        "assert sys.modules['openvino_telemetry'] is None"
    )
    env = {**os.environ, "HOME": str(home)}
    env.pop("CI", None)  # OpenVINO's own opt-out for CI machines
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (home / "intel").exists()


def test_load_turns_off_ultralytics_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    from ultralytics.utils.events import events

    monkeypatch.setattr(events, "enabled", True)  # as outside pytest, online, sync on
    YoloBackend(YoloBackend.load_settings(preload=[])).load()
    assert events.enabled is False


def test_batch_size_auto_is_one_on_openvino_and_four_on_pytorch() -> None:
    for runtime, expected in (("openvino", 1), ("torch", 4)):
        backend = YoloBackend(YoloBackend.load_settings(runtime=runtime, preload=[]))
        assert backend.models.runtime == runtime
        assert backend._batch_size(backend.load_settings()) == expected
        assert backend._batch_size(backend.load_settings(batch_size=3)) == 3
