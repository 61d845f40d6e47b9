"""Keep each project's prediction selector on the version this backend serves.

Label Studio sorts and samples by a prediction's ``score`` only among predictions whose
``model_version`` equals the project's selector (protocol §6.3, §6.4); out of the box the
selector is the backend's *title*, so the score column stays empty. Once predictions of the
served version exist in a project (LS stores them after ``/predict`` answers), a background
thread points the selector at that version through the LS API — retrying a few times, since LS
refuses a version it has no prediction of yet. Without LS credentials it logs, once per
project and version, the exact setting to change by hand.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from prelabel._engine.store import ProjectState
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.errors import PrelabelError

__all__ = ["SelectorSync"]

log = logging.getLogger(__name__)

#: Seconds to wait before each try: LS may still be storing the predictions just served.
RETRY_DELAYS = (1.0, 3.0, 10.0, 30.0)


class SelectorSync:
    """Points projects' prediction selectors at the served version, off the request path.

    Args:
        client_for: the LS client for a project (``None`` when LS is unknown).
        delays: waits before each try.
    """

    def __init__(
        self,
        client_for: Callable[[ProjectState], LabelStudioClient | None],
        delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.client_for = client_for
        self.delays = delays
        self._done: set[tuple[str, str]] = set()
        self._advised: set[tuple[str, str, str]] = set()
        self._pending: queue.Queue[tuple[ProjectState, str]] = queue.Queue(maxsize=1000)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def served(self, state: ProjectState, version: str) -> None:
        """Predictions of ``version`` were just served to ``state``'s project; never blocks."""
        if self.client_for(state) is None:
            self.advise(state, version)
            return
        key = (state.key.id, version)
        with self._lock:
            if key in self._done:
                return
            self._done.add(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._drain, name="prelabel-selector", daemon=True
                )
                self._thread.start()
        try:
            self._pending.put_nowait((state, version))
        except queue.Full:
            with self._lock:
                self._done.discard(key)  # try again on a later request

    def advise(self, state: ProjectState, version: str) -> None:
        """At ``/setup``: without LS credentials, say once which setting to change by hand."""
        key = ("advice", state.key.id, version)
        with self._lock:
            if key in self._advised:
                return
            self._advised.add(key)
        if self.client_for(state) is None:
            log.warning(
                "Project %s: to sort and sample tasks by this backend's scores, open the"
                " project's Settings → Annotation → 'Use predictions to prelabel tasks' in Label"
                " Studio and select %r (or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY so"
                " prelabel does it).",
                state.key.id,
                version,
            )

    def select(self, state: ProjectState, version: str) -> bool:
        """Point the selector at ``version`` now (retrying while LS lacks its predictions).

        Returns whether the selector is on ``version`` afterwards.
        """
        client = self.client_for(state)
        if client is None:
            return False
        last: PrelabelError | None = None
        for delay in (0.0, *self.delays):
            time.sleep(delay)
            try:
                ls_projects.select_version(client, state.key.id, version)
                return True
            except PrelabelError as exc:
                last = exc
        log.warning(
            "Project %s: could not point the prediction selector at %s: %s",
            state.key.id,
            version,
            last,
        )
        return False

    def flush(self) -> None:
        """Wait until every queued selection is done (tests)."""
        self._pending.join()

    def _drain(self) -> None:
        while True:
            state, version = self._pending.get()
            try:
                self.select(state, version)
            except Exception:
                log.exception("Project %s: selecting version %s failed", state.key.id, version)
            finally:
                self._pending.task_done()
