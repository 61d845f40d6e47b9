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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from prelabel._engine.bulk import Progress, predict_in_batches
from prelabel._engine.bulk_sources import ExportFile, LiveProject
from prelabel._engine.runtime import Runtime, build_runtime, make_backend
from prelabel._engine.store import ProjectState
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings, load_settings

__all__ = ["PredictCommand", "ProgressLine", "predict_export", "predict_project"]


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
    source = LiveProject(client, key.id, ctx.model_version, progress, unlabeled_only=unlabeled_only)
    with _stop_on_ctrl_c() as stop:
        predict_in_batches(
            lambda batch: runtime.runner.run(batch, ctx),
            source.tasks(),
            source.post,
            batch_size=batch_size,
            concurrency=concurrency,
            store_every=source.store_every,
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
    unlabeled_only: bool = True,
) -> tuple[Progress, bool]:
    """Pre-annotate the tasks of an LS JSON export into an LS import file at ``out``."""
    export = ExportFile(source, out)
    state = ProjectState(project, label_config=label_config)
    stored = runtime.store.project(project)
    if stored.current is not None:
        state = stored  # the version this backend serves that project
    ctx = runtime.context(state, label_config=LabelConfig.cached(label_config))
    runtime.check_project(project, ctx.label_config, ctx.settings, source="predict")
    pending = export.pending(ctx.model_version, unlabeled_only=unlabeled_only)
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


@dataclass(frozen=True)
class PredictCommand:
    """``prelabel predict``: a live project (``project_id``) or an export file."""

    project_id: int | None
    export_file: Path | None
    out: Path | None
    label_config: Path | None
    unlabeled_only: bool

    def run(
        self, name: str | None, *, batch_size: int | None, concurrency: int | None
    ) -> tuple[str, bool]:
        """Run it with backend ``name``; the closing message and whether it was stopped."""
        settings = load_settings(CoreSettings)
        runtime = build_runtime(make_backend(name, settings), settings)
        runtime.backend.load()
        hints = runtime.backend.bulk
        sizes = {
            "batch_size": batch_size or hints.batch_size,
            "concurrency": concurrency or hints.concurrency,
        }
        client = runtime.ls_api()
        if self.project_id is not None and client is None:
            raise ConfigError(
                "--project needs Label Studio's API: set LABEL_STUDIO_URL and "
                "LABEL_STUDIO_API_KEY (a personal access token)."
            )
        show = ProgressLine()
        if self.export_file is None:
            assert client is not None and self.project_id is not None
            progress, stopped = predict_project(
                runtime, client, self.project_id, unlabeled_only=self.unlabeled_only, show=show,
                **sizes,
            )  # fmt: skip
            where = f"project {self.project_id}"
        else:
            if self.label_config is not None:
                xml, key = self.label_config.read_text(encoding="utf-8"), ProjectKey("0")
            else:
                assert client is not None and self.project_id is not None
                info = ls_projects.project(client, self.project_id)
                xml, key = str(info.get("label_config") or ""), ProjectKey.from_webhook(info)
            out = self.out or self.export_file.with_name(
                self.export_file.stem + ".predictions.json"
            )
            progress, stopped = predict_export(
                runtime, self.export_file, out, label_config=xml, project=key, show=show,
                unlabeled_only=self.unlabeled_only, **sizes,
            )  # fmt: skip
            where = str(out)
        runtime.acceptance.flush()
        if stopped:
            return (
                f"Stopped after {progress.done} tasks; run the same command again to resume.",
                True,
            )
        refused = f", {progress.refused} refused by Label Studio" if progress.refused else ""
        return (
            f"Done: {progress.done} tasks predicted ({progress.empty} empty{refused}) into {where}.",
            False,
        )
