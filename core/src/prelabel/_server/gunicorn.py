"""Production serving with gunicorn, configured from the CLI's options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from prelabel._server.buffering import BufferingWorker

__all__ = ["run_gunicorn"]


class _Application(BaseApplication):  # type: ignore[misc]
    """gunicorn application that builds one app per worker (models load in the worker, after fork)."""

    def __init__(self, options: dict[str, Any], app_factory: Callable[[], Flask]) -> None:
        self.options = options
        self.app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.app_factory()


def run_gunicorn(
    *,
    bind: str,
    workers: int,
    threads: int,
    timeout: int,
    app_factory: Callable[[], Flask] | None = None,
    when_ready: Callable[[], None] | None = None,
    max_request_bytes: int | None = None,
) -> None:
    """Run gunicorn in the foreground; each worker calls ``app_factory`` (default: ``create_app``).

    Not ``--preload``: loading in the master and forking breaks CUDA ("Cannot re-initialize
    CUDA in forked subprocess"), so each worker loads the model itself. ``when_ready`` runs
    in the master once the address is bound, before any worker starts.

    Workers are :class:`~prelabel._server.buffering.BufferingWorker`: a thread gets a request
    only once it has arrived whole, so slow clients cannot starve ``/health``
    (``benchmarks/bench_soak.py`` measures it). ``max_request_bytes`` (default:
    ``PRELABEL_MAX_REQUEST_MB``) is refused with 413 before it is read.
    """
    if max_request_bytes is None:
        from prelabel.settings import CoreSettings, load_settings

        max_request_bytes = int(load_settings(CoreSettings).max_request_mb * 1024 * 1024)
    # Inherited by the forked workers.
    BufferingWorker.max_body = max_request_bytes
    hooks: dict[str, Any] = {}
    if when_ready is not None:
        hooks["when_ready"] = lambda _arbiter: when_ready()
    _Application(
        {
            **hooks,
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": f"{BufferingWorker.__module__}.{BufferingWorker.__name__}",
            # Above the worker's own limit, so it answers 503 instead of gthread not accepting.
            "worker_connections": BufferingWorker.max_clients + 100,
            "timeout": timeout,
            "graceful_timeout": 30,
            "accesslog": "-",
            "preload_app": False,
            # gunicorn >= 25.1 puts one control socket per user at a fixed path; several
            # `prelabel serve` on one host would unlink each other's.
            "control_socket_disable": True,
        },
        app_factory or _default_app,
    ).run()


def _default_app() -> Flask:
    from prelabel._server.app import create_app

    return create_app()
