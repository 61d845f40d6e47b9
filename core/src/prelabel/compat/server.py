"""The Flask app and production server for a compat project (``prelabel start DIR``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from prelabel._engine.engines import database_target
from prelabel._engine.runtime import build_runtime
from prelabel._server.app import create_app
from prelabel._server.gunicorn import run_gunicorn as serve
from prelabel.compat._store import CompatStore
from prelabel.compat.adapter import CompatBackend
from prelabel.compat.base import LabelStudioMLBase
from prelabel.compat.loader import load_model_class
from prelabel.compat.training import CompatTraining
from prelabel.settings import CoreSettings, load_settings

__all__ = ["make_app", "run_gunicorn"]


def make_app(
    model: type[LabelStudioMLBase] | Path,
    settings: CoreSettings | None = None,
    *,
    start_jobs: bool = True,
    class_name: str | None = None,
) -> Flask:
    """The server for a compat model: a class, or a directory holding ``model.py``.

    Args:
        model: the model class, or the project directory (its ``model.py`` is imported).
        settings: core settings; by default from the environment.
        start_jobs: run training jobs in a thread of this process.
        class_name: which class of ``model.py`` to serve when it defines several.
    """
    settings = settings or load_settings(CoreSettings)
    model_class = (
        model if isinstance(model, type) else load_model_class(Path(model), class_name=class_name)
    )
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    database = database_target(settings.database_url, settings.model_dir)
    backend = CompatBackend(model_class, CompatStore(settings.model_dir, database))
    runtime = build_runtime(backend, settings, policy=CompatTraining)
    return create_app(runtime=runtime, start_jobs=start_jobs)


def run_gunicorn(
    directory: Path,
    settings: CoreSettings,
    *,
    bind: str,
    workers: int,
    threads: int,
    timeout: int,
    class_name: str | None = None,
) -> None:
    """Serve ``directory``'s model with gunicorn; each worker imports it and trains in a thread."""
    serve(
        bind=bind,
        workers=workers,
        threads=threads,
        timeout=timeout,
        app_factory=lambda: make_app(directory, settings, class_name=class_name),
        max_request_bytes=int(settings.max_request_mb * 1024 * 1024),
    )
