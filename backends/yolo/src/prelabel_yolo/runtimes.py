"""Which engine runs a YOLO model's forward pass: PyTorch, or OpenVINO on the CPU.

On a CPU, OpenVINO runs yolov8n's forward pass about twice as fast as PyTorch at the same
(32-bit) precision; through ultralytics' pre- and post-processing a one-image predict is
1.3-1.5x as fast (``benchmarks/README.md`` has the figures). ``runtime = "auto"`` therefore
serves every weights file through OpenVINO when no CUDA device is in use and the ``openvino``
package imports, and through PyTorch otherwise. Training always runs in PyTorch, on the
``.pt`` file.

A weights file is exported once (:func:`export_openvino`, about 3 s for an *n* model) into a
cache keyed by the file's content, under the weights root: the training job that evaluates a
new version exports it, and the server that later serves it finds the export there.

Ultralytics compiles an exported model with OpenVINO's defaults: every core, and on CPUs with
bfloat16 units (Sapphire Rapids and later) bfloat16 arithmetic, which moved scores by about
2% of their value and so changes which boxes pass a threshold. :func:`serve_on_threads`
compiles it again with 32-bit precision on the process's thread count, whenever ultralytics
sets up a predictor.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from prelabel import BackendLoadError
from prelabel_yolo import telemetry

__all__ = [
    "CACHE_DIR",
    "Runtime",
    "choose_runtime",
    "export_openvino",
    "exported_metadata",
    "serve_on_threads",
]

log = logging.getLogger(__name__)

Runtime = Literal["torch", "openvino"]

#: The exports' cache, under the weights root (``PRELABEL_MODEL_DIR``).
CACHE_DIR = ".openvino"

#: Exports kept in the cache; the least recently loaded beyond this are deleted.
KEEP_EXPORTS = 16

#: Seconds an export may take before it counts as failed.
EXPORT_TIMEOUT = 900


def choose_runtime(setting: str, device: str) -> Runtime:
    """The engine for the ``runtime`` setting (``auto``, ``torch``, ``openvino``) and device.

    Raises:
        BackendLoadError: ``openvino`` was asked for on a CUDA device, or is not installed.
    """
    device = device.strip().lower()
    accelerated = device not in ("", "cpu") or (device == "" and _cuda_available())
    if setting == "torch":
        return "torch"
    if setting == "openvino":
        if accelerated:
            raise BackendLoadError(
                "PRELABEL_YOLO_RUNTIME=openvino runs on the CPU, but the device is"
                f" {device or 'CUDA (auto)'}: set PRELABEL_YOLO_DEVICE=cpu, or the runtime to torch."
            )
        if not _openvino_installed():
            raise BackendLoadError(
                "PRELABEL_YOLO_RUNTIME=openvino needs the openvino package: pip install openvino."
            )
        return "openvino"
    return "openvino" if not accelerated and _openvino_installed() else "torch"


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def export_openvino(weights: Path, root: Path) -> Path:
    """The OpenVINO export of ``weights`` (a ``.pt`` file): its directory in the cache.

    Exports with dynamic input shapes (any batch and image size, so images are letterboxed
    only to a multiple of the stride, as PyTorch runs them). Safe to call from several
    processes at once: each exports into a directory of its own and renames it into place.

    Raises:
        BackendLoadError: the weights cannot be exported (the message names the file).
    """
    cache = root / CACHE_DIR
    # The suffix is how ultralytics recognises an OpenVINO directory.
    target = cache / f"{weights.stem}-{_digest(weights)}_openvino_model"
    if (target / "metadata.yaml").is_file():
        with contextlib.suppress(OSError):  # a read-only cache still serves
            os.utime(target)  # recently used: kept by _prune
        return target
    try:
        return _export_into(cache, target, weights)
    except OSError as exc:  # a read-only or full disk
        raise BackendLoadError(f"Could not export {weights} to OpenVINO in {cache}: {exc}") from exc


def _export_into(cache: Path, target: Path, weights: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        copy = work / weights.name
        shutil.copyfile(weights, copy)
        try:
            exported = _export(copy)
        except Exception as exc:  # torch/OpenVINO raise many types for a model they cannot trace
            raise BackendLoadError(f"Could not export {weights} to OpenVINO: {exc}") from exc
        try:
            os.rename(exported, target)
        except OSError:
            if not (target / "metadata.yaml").is_file():
                raise
            # Another process exported the same weights first; its copy is identical.
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("Exported %s to OpenVINO in %s", weights, target)
    _prune(cache)
    return target


def _export(weights: Path) -> Path:
    """Export in a child process: the conversion's memory peak (a traced copy of the model)
    stays out of the server."""
    proc = subprocess.run(
        [sys.executable, "-m", "prelabel_yolo.runtimes", str(weights)],
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(" ".join(proc.stderr.strip().splitlines()[-3:]) or "no output")
    return Path(proc.stdout.strip().splitlines()[-1])


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:20]


def _prune(cache: Path) -> None:
    for work in cache.glob(".export-*"):
        if time.time() - work.stat().st_mtime > EXPORT_TIMEOUT:
            shutil.rmtree(work, ignore_errors=True)  # left by a process killed mid-export
    exports = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    exports.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in exports[KEEP_EXPORTS:]:
        # A process serving it keeps working: OpenVINO read the files when it compiled.
        shutil.rmtree(old, ignore_errors=True)


def exported_metadata(exported: Path) -> dict[str, Any]:
    """What ultralytics wrote about an export: ``task``, ``names``, ``kpt_shape``…"""
    from ultralytics.utils import YAML

    metadata: dict[str, Any] = YAML.load(exported / "metadata.yaml")  # type: ignore[no-untyped-call]
    return metadata


def serve_on_threads(yolo: Any, exported: Path, threads: int) -> None:
    """Run the OpenVINO model ``yolo`` (loaded from ``exported``) in 32 bits on ``threads``.

    Hooks every predictor ultralytics sets up for ``yolo`` (a tracking call sets up a new one)
    and recompiles its model once, with OpenVINO's latency hint.
    """
    xml = next(exported.glob("*.xml"))

    def configure(predictor: Any) -> None:
        backend = predictor.model.backend
        if getattr(backend, "prelabel_threads", None) == threads:
            return
        import openvino as ov

        core = ov.Core()
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": ov.Type.f32,
            "INFERENCE_NUM_THREADS": threads,
        }
        backend.compile_model = functools.partial(
            core.compile_model, device_name="CPU", config=config
        )
        backend.ov_compiled_model = backend.compile_model(core.read_model(str(xml)))
        backend.prelabel_threads = threads

    yolo.add_callback("on_predict_start", configure)


def _main(weights: str) -> None:
    from ultralytics.models.yolo.model import YOLO

    telemetry.turn_off()
    exported = YOLO(weights).export(format="openvino", dynamic=True, verbose=False)
    print(exported)  # the last line of stdout: the parent reads it


if __name__ == "__main__":
    _main(sys.argv[1])
