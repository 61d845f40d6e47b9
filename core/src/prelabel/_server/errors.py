"""The one place exceptions become HTTP responses: JSON bodies, tracebacks to the log only."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from prelabel.errors import PrelabelError, Unauthorized

__all__ = ["install_error_handlers"]

log = logging.getLogger(__name__)


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

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("Unhandled error")
        return _body(
            "InternalError", "Internal error in the backend; see its log for details.", 500
        )
