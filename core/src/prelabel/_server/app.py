"""The Flask application factory."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, g, request

from prelabel._server.auth import OPEN_PATHS, check_authorization
from prelabel._server.errors import install_error_handlers
from prelabel._server.routes import bp
from prelabel._server.state import ServerState
from prelabel._server.telemetry import Telemetry
from prelabel.acceptance import AcceptanceTracker
from prelabel.backend import Backend
from prelabel.jobs import JobQueue, JobRunner
from prelabel.lsclient import LabelStudioClient
from prelabel.media import MediaResolver
from prelabel.registry import discover, load_backend, select_backend
from prelabel.runner import PredictionRunner
from prelabel.settings import CoreSettings, check_environment, load_settings
from prelabel.store import ProjectStore
from prelabel.training import Trainer

__all__ = ["create_app", "make_backend"]

log = logging.getLogger(__name__)


def make_backend(name: str | None = None, settings: CoreSettings | None = None) -> Backend:
    """Instantiate the selected backend with its settings from the environment (not loaded)."""
    settings = settings or load_settings(CoreSettings)
    cls = load_backend(select_backend(name or settings.backend))
    others = [f"PRELABEL_{n.upper()}_" for n in discover() if n != cls.name]
    check_environment(os.environ, {cls.env_prefix(): cls.Settings}, ignore_prefixes=others)
    return cls()


def create_app(
    backend: Backend | None = None,
    settings: CoreSettings | None = None,
    *,
    load: bool = True,
    start_jobs: bool | None = None,
) -> Flask:
    """Build the server for one backend.

    Args:
        backend: the backend instance; by default the one selected by ``PRELABEL_BACKEND``
            (or the only one installed), configured from the environment.
        settings: core settings; by default from the environment.
        load: call ``backend.load()`` now (once per process, before the first request).
        start_jobs: run training jobs in a background thread of this process; defaults to
            ``settings.job_runner == "thread"``.
    """
    settings = settings or load_settings(CoreSettings)
    backend = backend or make_backend(settings=settings)
    backend.version  # noqa: B018  (resolve it now: the first /health must not pay for it)
    if load:
        started = time.perf_counter()
        backend.load()
        log.info("Loaded backend %s in %.2f s.", backend.name, time.perf_counter() - started)

    settings.model_dir.mkdir(parents=True, exist_ok=True)
    store = ProjectStore(settings.model_dir)
    queue = JobQueue(store.root / "prelabel.db", stale_after=settings.job_stale_seconds)
    acceptance = AcceptanceTracker(store.root / "prelabel.db")
    telemetry = Telemetry(backend.name, queue.counts)
    client = (
        LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key)
        if settings.label_studio_url
        else None
    )
    runner = PredictionRunner(
        backend,
        score_policy=settings.score_policy,
        control_fraction=settings.control_fraction,
        on_stats=telemetry.observe_run,
    )
    state = ServerState(
        backend=backend,
        settings=settings,
        store=store,
        queue=queue,
        acceptance=acceptance,
        telemetry=telemetry,
        media=MediaResolver(settings, client=client),
        client=client,
        runner=runner,
    )
    runner.on_served = acceptance.record_served_later
    if start_jobs if start_jobs is not None else settings.job_runner == "thread":
        state.job_runner = JobRunner(queue, make_trainer(state))
        state.job_runner.start()

    app = Flask("prelabel")
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_request_mb * 1024 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["prelabel"] = state
    app.register_blueprint(bp)
    install_error_handlers(app)
    _install_hooks(app, state)
    return app


def make_trainer(state: ServerState) -> Trainer:
    """The job handler that trains ``state.backend``."""
    return Trainer(
        state.backend,
        state.settings,
        state.store,
        media_for=state.media_for,
        client_for=state.client_for,
        settings_for=state.settings_for,
    )


def _install_hooks(app: Flask, state: ServerState) -> None:
    @app.before_request
    def _before() -> None:
        g.prelabel_started = time.perf_counter()
        if request.path not in OPEN_PATHS:
            check_authorization(request.headers.get("Authorization"), state.settings)

    @app.after_request
    def _after(response: Response) -> Response:
        started = g.get("prelabel_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            state.telemetry.observe_request(
                rule, response.status_code, time.perf_counter() - started
            )
        return response
