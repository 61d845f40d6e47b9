"""Background embedding of images annotators are about to open, behind interactive requests.

One thread works through a bounded queue: the newest request's images first, in their order;
when more are waiting than the bound, the oldest requests' are dropped (they are the least
likely to be opened next). The thread never competes with an annotator's click: it waits
before each image while an interactive request runs, and SAM's image encoder calls
:meth:`Priority.checkpoint` before each of its blocks, so an encoding already under way
pauses within one block of a click arriving — unless that click is waiting for this very
image.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Job", "Prefetcher", "Priority"]

log = logging.getLogger(__name__)


class Priority:
    """Interactive requests first: background work waits while any runs."""

    def __init__(self) -> None:
        self._active = 0
        self._changed = threading.Condition()
        self._local = threading.local()

    @contextmanager
    def interactive(self) -> Iterator[None]:
        """Mark the calling thread's work as an annotator's request, for its duration."""
        with self._changed:
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    @contextmanager
    def background(self, urgent: Callable[[], bool]) -> Iterator[None]:
        """Run the calling thread's work as background work; ``urgent()`` lifts the pause."""
        self._local.urgent = urgent
        try:
            self.checkpoint()
            yield
        finally:
            del self._local.urgent

    def checkpoint(self) -> None:
        """In background work, wait until no interactive request runs (or the work is urgent)."""
        urgent: Callable[[], bool] | None = getattr(self._local, "urgent", None)
        if urgent is None:
            return  # an interactive request's own computation
        with self._changed:
            while self._active and not urgent():
                self._changed.wait()

    def wake(self) -> None:
        """Re-check paused background work (an interactive request now waits for it)."""
        with self._changed:
            self._changed.notify_all()

    @property
    def active(self) -> int:
        """Interactive requests running now."""
        with self._changed:
            return self._active


@dataclass(frozen=True)
class Job:
    """One image to embed: ``key`` identifies it in the queue, ``payload`` is for the worker."""

    key: Hashable
    payload: Any


class Prefetcher:
    """A worker thread embedding queued images, at most ``limit`` waiting.

    Args:
        work: embeds one job's image; its exceptions are logged, never raised.
        limit: most jobs waiting; 0 turns prefetch off.
    """

    def __init__(self, work: Callable[[Job], None], limit: int) -> None:
        self._work = work
        self.limit = limit
        self._queue: deque[Job] = deque()
        self._busy = False
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, jobs: Sequence[Job]) -> int:
        """Queue ``jobs`` ahead of those waiting; returns how many are waiting now."""
        if self.limit <= 0 or not jobs:
            return 0
        with self._changed:
            fresh = list({job.key: job for job in jobs}.values())[: self.limit]
            keys = {job.key for job in fresh}
            older = [job for job in self._queue if job.key not in keys]
            self._queue = deque((fresh + older)[: self.limit])
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="sam-prefetch", daemon=True)
                self._thread.start()
            self._changed.notify_all()
            return len(self._queue)

    def pending(self) -> int:
        """Jobs waiting (not counting the one being worked on)."""
        with self._changed:
            return len(self._queue)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty and no job runs; ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        """Drop waiting jobs and stop the thread after the current one."""
        with self._changed:
            self._closed = True
            self._queue.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                job = self._queue.popleft()
                self._busy = True
            try:
                self._work(job)
            except Exception:
                # A task whose image cannot be read must not stop prefetch for the others.
                log.warning("sam: prefetch of %.200s failed", job.key, exc_info=True)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
