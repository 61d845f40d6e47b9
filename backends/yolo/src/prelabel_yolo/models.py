"""Where weights come from, and the process-wide cache of loaded models.

A model is named by a control's ``model_path`` attribute or a ``*_model`` setting. Names are
resolved only inside the weights root (``PRELABEL_MODEL_DIR``): ``..``, absolute paths and
symlinks leading out of it are refused. A bare name that ultralytics publishes
(``yolov8n.pt``, ``yolo11n-seg.pt``…) is downloaded into the root when the machine is online;
a bare ``*.yaml`` name builds an untrained model from ultralytics' own architecture files.

Base models are loaded once per process and shared by every project (keyed by resolved
path); fine-tuned per-project weights are kept in an LRU of bounded size.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prelabel import BackendLoadError

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
        BackendLoadError: the name leaves ``root``, or the file is missing and cannot be
            downloaded (offline, or not a published name); the message says where to put it.
    """
    name = name.strip()
    if not name:
        raise BackendLoadError("An empty model name was configured; set model_path or *_model.")
    base = root.resolve()
    candidate = (base / name).resolve()
    if Path(name).is_absolute() or not candidate.is_relative_to(base):
        raise BackendLoadError(
            f"Refusing model path {name!r}: weights are read only inside PRELABEL_MODEL_DIR "
            f"({base}); give a path relative to it, without '..'."
        )
    if candidate.is_file():
        return str(candidate)
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


def _load(source: str, key: str, prepare: Callable[[Any], None]) -> LoadedModel:
    from ultralytics.models.yolo.model import YOLO

    try:
        yolo = YOLO(source)
        prepare(yolo)
    except Exception as exc:  # torch/ultralytics raise many types for a corrupt or foreign file
        raise BackendLoadError(f"Could not load YOLO weights {source}: {exc}") from exc
    log.info("Loaded %s (%s, %d classes)", source, yolo.task, len(yolo.names))
    return LoadedModel(key=key, yolo=yolo)


class ModelCache:
    """Loaded models: base weights shared for the process, fine-tuned ones in an LRU.

    Args:
        root: the weights root (``PRELABEL_MODEL_DIR``).
        max_tuned: how many fine-tuned models stay loaded.
        prepare: run on every ``YOLO`` object once it is loaded (the backend's warm-up).
    """

    def __init__(self, root: Path, max_tuned: int, prepare: Callable[[Any], None]) -> None:
        self.root = root
        self.max_tuned = max_tuned
        self.prepare = prepare
        self._base: dict[str, LoadedModel] = {}
        self._tuned: OrderedDict[Path, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def base(self, name: str) -> LoadedModel:
        """The base model called ``name``, loaded on first use (see :func:`resolve_weights`)."""
        source = resolve_weights(name, self.root)
        with self._lock:
            found = self._base.get(source)
            if found is None:
                # Loading under the lock: two requests must not each load a copy.
                found = self._base[source] = _load(source, source, self.prepare)
            return found

    def tuned(self, path: Path) -> LoadedModel:
        """Fine-tuned weights written by ``fit`` (trusted: under the project's version dir)."""
        with self._lock:
            found = self._tuned.get(path)
            if found is not None:
                self._tuned.move_to_end(path)
                return found
            found = self._tuned[path] = _load(str(path), str(path), self.prepare)
            while len(self._tuned) > self.max_tuned:
                evicted, _ = self._tuned.popitem(last=False)
                log.debug("Unloaded fine-tuned weights %s (LRU)", evicted)
            return found

    @property
    def loaded(self) -> list[str]:
        """Keys of every model in memory, base first."""
        with self._lock:
            return [*self._base, *(str(p) for p in self._tuned)]
