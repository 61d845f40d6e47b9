"""The one place exceptions become HTTP responses: JSON bodies, tracebacks to the log only."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from prelabel._engine.diskcheck import is_store_failure
from prelabel.errors import PrelabelError, Unauthorized

__all__ = ["NESTED_TOO_DEEP", "install_error_handlers"]

log = logging.getLogger(__name__)

NESTED_TOO_DEEP = (
    "The request body is nested too deeply (Label Studio's bodies are a few levels deep); "
    "send flatter JSON."
)


def _body(kind: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": kind, "message": message}), status


def _reason_phrase(message: str) -> str:
    """``message`` fit for a status line (printable ASCII, one line, at most 300 characters).

    Label Studio discards error bodies and shows requests' ``"<status> Server Error: <reason>
    for url: …"``, so the reason phrase is where a message reaches its users (protocol §2).
    """
    line = " ".join(message.split())
    return "".join(c if " " <= c <= "~" else "?" for c in line)[:300]


def install_error_handlers(app: Flask) -> None:
    """Map prelabel errors, HTTP errors and anything unexpected to JSON responses."""

    @app.errorhandler(PrelabelError)
    def _prelabel(exc: PrelabelError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        else:
            log.warning("%s: %s", type(exc).__name__, exc)
        response, status = _body(type(exc).__name__, str(exc), exc.status)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Basic realm="prelabel"'
        reason = _reason_phrase(str(exc))
        response.status = f"{status} {reason}" if reason else status
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        return _body(type(exc).__name__, exc.description or exc.name, status)

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> tuple[Response, int]:
        # JSON nested a few hundred levels parses, then overflows the stack of the next
        # walker (storing it, scoring it): the input's fault, not the server's.
        log.warning("RecursionError on %s: %s", request.path, exc)
        return _body("BadRequest", NESTED_TOO_DEEP, 400)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        if is_store_failure(exc):
            runtime = app.extensions["prelabel"]
            runtime.write_failures.record(exc)
            problem = runtime.store_problem()
            log.error("Nothing stored for %s: %s (%s).", request.path, problem, exc)
            return _body(
                "StoreUnavailable",
                f"Nothing was stored: {problem}. Free disk space or remount the model "
                "directory read-write; GET /health reports it.",
                503,
            )
        log.exception("Unhandled error")
        return _body(
            "InternalError", "Internal error in the backend; see its log for details.", 500
        )
