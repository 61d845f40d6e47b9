"""The Flask application factory: HTTP in front of a :class:`~prelabel._engine.runtime.Runtime`."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from prelabel._engine.runtime import Runtime, build_runtime
from prelabel._server.auth import OPEN_PATHS, check_authorization
from prelabel._server.errors import install_error_handlers
from prelabel._server.jsonprovider import FastJSONProvider
from prelabel._server.routes import bp
from prelabel.backend import Backend
from prelabel.settings import CoreSettings

__all__ = ["create_app", "runtime_of"]

log = logging.getLogger(__name__)


def create_app(
    backend: Backend | None = None,
    settings: CoreSettings | None = None,
    *,
    runtime: Runtime | None = None,
    load: bool = True,
    start_jobs: bool | None = None,
) -> Flask:
    """Build the server for one backend.

    Args:
        backend: the backend instance; by default the one selected by ``PRELABEL_BACKEND``
            (or the only one installed), configured from the environment.
        settings: core settings; by default from the environment.
        runtime: the services to serve (built from ``backend`` and ``settings`` when absent).
        load: call ``backend.load()`` now (once per process, before the first request).
        start_jobs: run training jobs in a background thread of this process; defaults to
            ``settings.job_runner == "thread"``.
    """
    runtime = runtime or build_runtime(backend, settings)
    runtime.backend.version  # noqa: B018  (resolve it now: the first /health must not pay for it)
    if load:
        started = time.perf_counter()
        runtime.backend.load()
        log.info(
            "Loaded backend %s in %.2f s.", runtime.backend.name, time.perf_counter() - started
        )
    if start_jobs if start_jobs is not None else runtime.settings.job_runner == "thread":
        runtime.start_job_thread()

    app = Flask("prelabel")
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = int(runtime.settings.max_request_mb * 1024 * 1024)
    app.extensions["prelabel"] = runtime
    app.register_blueprint(bp)
    install_error_handlers(app)
    _install_hooks(app, runtime)
    return app


def runtime_of(app: Flask) -> Runtime:
    """The runtime an app built by :func:`create_app` serves."""
    runtime: Runtime = app.extensions["prelabel"]
    return runtime


def _install_hooks(app: Flask, runtime: Runtime) -> None:
    @app.before_request
    def _before() -> None:
        g.prelabel_started = time.perf_counter()
        if request.path not in OPEN_PATHS:
            check_authorization(request.headers.get("Authorization"), runtime.settings)

    @app.after_request
    def _after(response: Response) -> Response:
        started = g.get("prelabel_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            runtime.telemetry.observe_request(
                rule, response.status_code, time.perf_counter() - started
            )
        return response
