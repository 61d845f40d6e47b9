"""Loaded models, shared by every project of the process.

Base models (named in settings or a labeling config) load once per process and stay, keyed by
the source they resolve to; per-project fine-tuned weights load on demand into an LRU of
bounded size. The backend supplies how names resolve and how a file loads, so this module
knows nothing of any model library.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["ModelCache"]

log = logging.getLogger(__name__)

M = TypeVar("M")


class ModelCache(Generic[M]):
    """Loaded models: base weights shared for the process, fine-tuned ones in an LRU.

    Args:
        load: builds a model from a resolved source (a file path, or whatever ``resolve``
            returns); raise :class:`prelabel.BackendLoadError` naming the file on failure.
        resolve: turns a configured name into the source to load (e.g.
            :func:`prelabel.vision.weights.find_weights`); called on every lookup, so keep
            it cheap.
        max_tuned: how many fine-tuned models stay loaded.
    """

    def __init__(
        self, load: Callable[[str], M], *, resolve: Callable[[str], str], max_tuned: int = 4
    ) -> None:
        self._load = load
        self._resolve = resolve
        self.max_tuned = max_tuned
        self._base: dict[str, M] = {}
        self._tuned: OrderedDict[Path, M] = OrderedDict()
        self._lock = threading.Lock()

    def base(self, name: str) -> M:
        """The base model called ``name``, loaded on first use."""
        source = self._resolve(name)
        with self._lock:
            found = self._base.get(source)
            if found is None:
                # Loading under the lock: two requests must not each load a copy.
                found = self._base[source] = self._load(source)
            return found

    def tuned(self, path: Path) -> M:
        """Fine-tuned weights written by ``fit`` (trusted: under the project's version dir)."""
        with self._lock:
            found = self._tuned.get(path)
            if found is not None:
                self._tuned.move_to_end(path)
                return found
            found = self._tuned[path] = self._load(str(path))
            while len(self._tuned) > self.max_tuned:
                evicted, _ = self._tuned.popitem(last=False)
                log.debug("Unloaded fine-tuned weights %s (LRU)", evicted)
            return found

    @property
    def loaded(self) -> list[str]:
        """Sources of every model in memory, base first."""
        with self._lock:
            return [*self._base, *(str(p) for p in self._tuned)]
