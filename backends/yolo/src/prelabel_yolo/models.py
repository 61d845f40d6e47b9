"""Where YOLO weights come from, and how they load into core's model cache.

A model is named by a control's ``model_path`` attribute or a ``*_model`` setting. Names are
resolved only inside the weights root (``PRELABEL_MODEL_DIR``, see
:mod:`prelabel.vision.weights`). A bare name that ultralytics publishes
(``yolov8n.pt``, ``yolo11n-seg.pt``…) is downloaded into the root when the machine is online;
a bare ``*.yaml`` name builds an untrained model from ultralytics' own architecture files.

Loaded models live in :class:`prelabel.vision.cache.ModelCache`: base models once per
process, shared by every project; fine-tuned per-project weights in an LRU of bounded size.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prelabel import BackendLoadError
from prelabel.vision import cache as vision_cache
from prelabel.vision.weights import locate_weights
from prelabel_yolo.runtimes import Runtime, choose_runtime, export_openvino, exported_metadata

__all__ = ["LoadedModel", "ModelCache", "resolve_weights"]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """An ultralytics ``YOLO`` model and the lock that serialises its use.

    Ultralytics predictors keep per-call state on the model object, so two threads must not
    run the same model at once.
    """

    key: str
    yolo: Any
    #: What runs its forward pass (see :mod:`prelabel_yolo.runtimes`).
    runtime: Runtime = "torch"
    #: Keypoints per instance (pose models; 0 for the others).
    keypoints: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def task(self) -> str:
        """``detect``, ``segment``, ``pose``, ``classify`` or ``obb``."""
        return str(self.yolo.task)

    @property
    def names(self) -> list[str]:
        """Class names in class-index order."""
        names: dict[int, str] = self.yolo.names
        return [str(names[i]) for i in sorted(names)]


def _offline() -> bool:
    return os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes")


def resolve_weights(name: str, root: Path) -> str:
    """The file (or ultralytics architecture name) to load for ``name``.

    Args:
        name: a path relative to ``root`` (``"custom/best.pt"``), a bare published weight
            name (``"yolov8n.pt"``), or a bare architecture name (``"yolov8n.yaml"``).
        root: the weights root (``PRELABEL_MODEL_DIR``).

    Raises:
        BackendLoadError: the name is refused (see :func:`prelabel.vision.weights.locate_weights`),
            or the file is missing and cannot be downloaded (offline, or not a published name);
            the message says where to put it.
    """
    candidate = locate_weights(name, root)
    if candidate.is_file():
        return str(candidate)
    name = name.strip()
    base = root.resolve()
    bare = "/" not in name and "\\" not in name
    if bare and name.endswith(".yaml"):
        return name  # ultralytics builds the architecture from its packaged cfg (random weights)
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    if bare and name in GITHUB_ASSETS_NAMES and not _offline():
        log.info("Downloading %s into %s", name, base)
        base.mkdir(parents=True, exist_ok=True)
        try:
            attempt_download_asset(candidate)
        except Exception as exc:  # ultralytics raises plain ConnectionError/OSError variants
            raise BackendLoadError(f"Could not download {name}: {exc}") from exc
        if candidate.is_file():
            return str(candidate)
    why = (
        "downloads are off (YOLO_OFFLINE=1)"
        if bare and name in GITHUB_ASSETS_NAMES
        else "it is not a weights file ultralytics publishes"
    )
    raise BackendLoadError(
        f"Model weights {name!r} not found at {candidate}, and {why}. Put the file there "
        f"(PRELABEL_MODEL_DIR={base}) or name other weights in model_path / PRELABEL_YOLO_*_MODEL."
    )


#: Called on every loaded ``YOLO`` object with its OpenVINO export (``None``: PyTorch).
Prepare = Callable[[Any, Path | None], None]


def _load(
    source: str, prepare: Prepare, runtime: Runtime, root: Path, fallback: bool
) -> LoadedModel:
    """``source`` loaded on ``runtime``; ``fallback``: PyTorch when the export fails."""
    from ultralytics.models.yolo.model import YOLO

    exported = None
    # Only weights files export: an architecture name (``*.yaml``) is a new random model on
    # every load, and other formats are exports already.
    if runtime == "openvino" and source.endswith(".pt"):
        try:
            exported = export_openvino(Path(source), root)
        except BackendLoadError as exc:
            if not fallback:
                raise
            log.warning("%s. Serving it with PyTorch.", exc)
    try:
        if exported is None:
            yolo = YOLO(source)
            kpt_shape = getattr(yolo.model, "kpt_shape", None)
        else:
            metadata = exported_metadata(exported)
            yolo = YOLO(str(exported), task=metadata["task"])
            kpt_shape = metadata.get("kpt_shape")
        prepare(yolo, exported)
    except Exception as exc:  # torch/ultralytics raise many types for a corrupt or foreign file
        raise BackendLoadError(f"Could not load YOLO weights {source}: {exc}") from exc
    used: Runtime = "torch" if exported is None else "openvino"
    log.info("Loaded %s (%s, %d classes) on %s", source, yolo.task, len(yolo.names), used)
    keypoints = int(kpt_shape[0]) if kpt_shape else 0
    return LoadedModel(key=source, yolo=yolo, runtime=used, keypoints=keypoints)


class ModelCache(vision_cache.ModelCache[LoadedModel]):
    """YOLO models: names resolved by :func:`resolve_weights`, files loaded by ``YOLO()``.

    Args:
        root: the weights root (``PRELABEL_MODEL_DIR``); OpenVINO exports are cached under it.
        max_tuned: how many fine-tuned models stay loaded.
        prepare: run on every ``YOLO`` object once it is loaded (the backend's warm-up).
        runtime: the ``runtime`` setting (``auto``, ``torch``, ``openvino``).
        device: the ``device`` setting (OpenVINO runs on the CPU only).
    """

    def __init__(
        self,
        root: Path,
        max_tuned: int,
        prepare: Prepare,
        runtime: str = "auto",
        device: str = "",
    ) -> None:
        self.runtime = choose_runtime(runtime, device)
        fallback = runtime == "auto"
        super().__init__(
            lambda source: _load(source, prepare, self.runtime, root, fallback),
            resolve=lambda name: resolve_weights(name, root),
            max_tuned=max_tuned,
        )
        self.root = root
