"""Keep a helper process running beside the server (``prelabel serve``'s training worker).

A thread of the serving master checks the child twice a second and starts it again when it
has exited, waiting longer after each quick failure (1 s doubling to 30 s) so a worker that
cannot start does not spin. The child gets SIGTERM when the master dies
(:func:`~prelabel._engine.worker.die_with_parent`), so no orphan outlives the server.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence

from prelabel._engine.worker import die_with_parent

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

_QUICK_EXIT = 10.0  # a child that ran shorter than this counts as a failed start


class Supervisor:
    """Runs ``command`` and restarts it whenever it exits, until :meth:`stop`.

    Args:
        command: the child's argv.
        name: what the log calls it.
        max_backoff: the longest wait between restarts, in seconds.
    """

    def __init__(self, command: Sequence[str], *, name: str, max_backoff: float = 30.0) -> None:
        self.command = list(command)
        self.name = name
        self.max_backoff = max_backoff
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid, ``None`` between restarts."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start the child now and watch it from a daemon thread."""
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching, SIGTERM the child, SIGKILL it after ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        self._started = time.monotonic()
        self._process = subprocess.Popen(self.command, preexec_fn=die_with_parent)
        log.info("Started %s (pid %d).", self.name, self._process.pid)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.wait(0.5):
            process = self._process
            # gunicorn's master reaps every child, so poll() may report 0 for a signal death.
            if process is None or process.poll() is None:
                continue
            ran = time.monotonic() - self._started
            backoff = backoff * 2 if ran < _QUICK_EXIT else 1.0
            wait = min(backoff, self.max_backoff)
            log.error(
                "%s (pid %d) exited after %.0f s with code %s; restarting in %.0f s.",
                self.name,
                process.pid,
                ran,
                process.returncode,
                wait,
            )
            if self._stop.wait(wait):
                return
            self.restarts += 1
            self._spawn()
