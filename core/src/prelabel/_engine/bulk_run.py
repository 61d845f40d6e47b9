"""``prelabel predict``: bulk pre-annotation from the command line, with a progress line.

Two sources (see :mod:`prelabel._engine.bulk`): a live LS project through its API, or an LS
JSON export turned into an import file. Ctrl-C stops after the batches in flight are stored;
running the same command again resumes.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from prelabel._engine.bulk import ExportFile, Progress, live_predictions, predict_in_batches
from prelabel._engine.runtime import Runtime
from prelabel._engine.store import ProjectState
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError
from prelabel.project import ProjectKey

__all__ = ["ProgressLine", "predict_export", "predict_project"]


class ProgressLine:
    """Draws ``done/total, rate, ETA`` on one terminal line (a log line every 5 s otherwise)."""

    def __init__(self, stream: IO[str] = sys.stderr, interval: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval
        self._last = 0.0

    def __call__(self, progress: Progress, *, final: bool = False) -> None:
        now = time.monotonic()
        if not (final or self.tty or now - self._last >= self.interval):
            return
        self._last = now
        total = progress.total - progress.skipped if progress.total is not None else None
        share = f" {100 * progress.done / total:5.1f}%" if total else ""
        bar = ""
        if total and self.tty:
            filled = int(30 * progress.done / total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] "
        eta = progress.eta
        text = (
            f"{bar}{progress.done}/{total if total is not None else '?'}{share}"
            f"  {progress.rate:.1f} tasks/s"
            + (f"  ETA {eta:.0f} s" if eta is not None and not final else "")
            + (f"  (skipped {progress.skipped} already predicted)" if progress.skipped else "")
        )
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the run to stop after the batches in flight; a second one aborts."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nStopping after the batches in flight (Ctrl-C again to abort)…\n")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def predict_project(
    runtime: Runtime,
    client: LabelStudioClient,
    project_id: int,
    *,
    unlabeled_only: bool,
    batch_size: int,
    concurrency: int,
    show: ProgressLine,
) -> tuple[Progress, bool]:
    """Pre-annotate an LS project's tasks that lack the served version's prediction.

    Returns the counts and whether the run was stopped early.
    """
    info = ls_projects.project(client, project_id)
    key = ProjectKey.from_webhook(info)
    config = info.get("label_config")
    if not isinstance(config, str) or not config.strip():
        raise ConfigError(f"Label Studio project {project_id} has no labeling config yet.")
    runtime.store.set_label_config(key, config)
    state = runtime.store.project(key)
    ctx = runtime.context(state, label_config=LabelConfig.cached(config))
    # A backend that cannot predict says why now, instead of posting empty predictions.
    runtime.check_project(key, ctx.label_config, ctx.settings, source="predict")
    progress = Progress()
    tasks, post = live_predictions(
        client, key.id, ctx.model_version, progress, unlabeled_only=unlabeled_only
    )
    with _stop_on_ctrl_c() as stop:
        predict_in_batches(
            lambda batch: runtime.runner.run(batch, ctx),
            tasks,
            post,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=progress,
            on_progress=show,
            stop=stop,
        )
        stopped = stop.is_set()
    show(progress, final=True)
    return progress, stopped


def predict_export(
    runtime: Runtime,
    source: Path,
    out: Path,
    *,
    label_config: str,
    project: ProjectKey,
    batch_size: int,
    concurrency: int,
    show: ProgressLine,
) -> tuple[Progress, bool]:
    """Pre-annotate the tasks of an LS JSON export into an LS import file at ``out``."""
    export = ExportFile(source, out)
    state = ProjectState(project, label_config=label_config)
    stored = runtime.store.project(project)
    if stored.current is not None:
        state = stored  # the version this backend serves that project
    ctx = runtime.context(state, label_config=LabelConfig.cached(label_config))
    runtime.check_project(project, ctx.label_config, ctx.settings, source="predict")
    pending = export.pending(ctx.model_version)
    progress = Progress(total=len(export.tasks), skipped=len(export.tasks) - len(pending))
    with _stop_on_ctrl_c() as stop:
        predict_in_batches(
            lambda batch: runtime.runner.run(batch, ctx),
            [pending],
            export.append,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=progress,
            on_progress=show,
            stop=stop,
        )
        stopped = stop.is_set()
    show(progress, final=True)
    if not stopped:
        export.finish()
    return progress, stopped
