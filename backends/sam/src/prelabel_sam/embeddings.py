"""The process-wide cache of image embeddings: bounded by memory, computed at most once.

Keyed by the model and the image's identity (its URL and the SHA-256 of its bytes, so an
image replaced under the same URL is a new image). Every request thread and the prefetch
thread share it. A key being computed is computed once: whoever asks meanwhile waits for that
result (and, if it is an interactive request waiting on a background computation, marks it
urgent so it is not paused for other interactive work). Least recently used embeddings are
evicted when the total passes the budget.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = ["CacheStats", "EmbeddingCache", "ImageKey"]

log = logging.getLogger(__name__)


class Sized(Protocol):
    """Anything that knows how much memory it holds."""

    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)


@dataclass(frozen=True)
class ImageKey:
    """One image as one model sees it."""

    model: str
    url: str
    digest: str

    @classmethod
    def of(cls, model: str, url: str, data: bytes) -> ImageKey:
        """The key of ``data`` fetched from ``url``, for ``model``."""
        return cls(model, url, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class CacheStats:
    """Counters since start.

    Attributes:
        hits: requests served from the cache.
        joins: requests that waited for the same image's computation already running.
        misses: requests that computed the embedding themselves.
        prefetched: embeddings computed in the background.
        prefetch_hits: prefetched embeddings later used by a request.
        evictions: embeddings dropped to stay within the budget.
        entries: embeddings held now.
        bytes: memory they hold.
        max_bytes: the budget.
    """

    hits: int = 0
    joins: int = 0
    misses: int = 0
    prefetched: int = 0
    prefetch_hits: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0
    max_bytes: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of requests that did not compute an embedding (hits and joins)."""
        total = self.hits + self.joins + self.misses
        return (self.hits + self.joins) / total if total else 0.0


@dataclass
class _Entry(Generic[V]):
    value: V
    prefetched: bool
    used: bool = False


@dataclass
class _Pending(Generic[V]):
    urgent: bool
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


class EmbeddingCache(Generic[V]):
    """Embeddings by :class:`ImageKey`, LRU within ``max_bytes``.

    Args:
        max_bytes: memory budget; 0 keeps nothing (every request computes).
        on_urgent: called when an interactive request starts waiting on a background
            computation (to wake a paused prefetch).
    """

    def __init__(self, max_bytes: int, on_urgent: Callable[[], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self._on_urgent = on_urgent
        self._entries: OrderedDict[ImageKey, _Entry[V]] = OrderedDict()
        self._pending: dict[ImageKey, _Pending[V]] = {}
        self._bytes = 0
        self._counts = dict.fromkeys(
            ("hits", "joins", "misses", "prefetched", "prefetch_hits", "evictions"), 0
        )
        self._lock = threading.Lock()

    def get(self, key: ImageKey, compute: Callable[[], V]) -> V:
        """The embedding for ``key``, computed by ``compute`` unless cached or being computed."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._counts["hits"] += 1
                if entry.prefetched and not entry.used:
                    self._counts["prefetch_hits"] += 1
                entry.used = True
                return entry.value
            pending = self._pending.get(key)
            joined = pending is not None
            if pending is None:
                self._counts["misses"] += 1
                pending = self._pending[key] = _Pending(urgent=True)
                woke = False
            else:
                self._counts["joins"] += 1
                woke = not pending.urgent
                pending.urgent = True
        if not joined:
            return self._compute(key, pending, compute, prefetched=False)
        if woke and self._on_urgent is not None:
            self._on_urgent()
        return self._wait(pending)

    def prefetch(self, key: ImageKey, compute: Callable[[], V]) -> bool:
        """Compute and keep ``key``'s embedding unless it is cached or being computed.

        Returns:
            Whether this call computed it.
        """
        with self._lock:
            if key in self._entries or key in self._pending:
                return False
            pending = self._pending[key] = _Pending[V](urgent=False)
        self._compute(key, pending, compute, prefetched=True)
        return True

    def urgent(self, key: ImageKey) -> bool:
        """Whether an interactive request is waiting for ``key``'s computation."""
        with self._lock:
            pending = self._pending.get(key)
            return pending is not None and pending.urgent

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def stats(self) -> CacheStats:
        """The counters and the memory held now."""
        with self._lock:
            return CacheStats(
                **self._counts,
                entries=len(self._entries),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
            )

    def _compute(
        self, key: ImageKey, pending: _Pending[V], compute: Callable[[], V], *, prefetched: bool
    ) -> V:
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.error = exc
            pending.done.set()
            raise
        with self._lock:
            del self._pending[key]
            self._store(key, value, prefetched)
        pending.value = value
        pending.done.set()
        return value

    @staticmethod
    def _wait(pending: _Pending[V]) -> V:
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.value is not None
        return pending.value

    def _store(self, key: ImageKey, value: V, prefetched: bool) -> None:
        """Keep ``value`` (the caller holds the lock), evicting the least recently used."""
        if prefetched:
            self._counts["prefetched"] += 1
        size = value.nbytes
        if size > self.max_bytes:
            log.debug("Embedding of %s (%d bytes) exceeds the cache budget", key.url, size)
            return
        self._entries[key] = _Entry(value, prefetched, used=not prefetched)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.value.nbytes
            self._counts["evictions"] += 1
