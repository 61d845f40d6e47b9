"""The one place exceptions become HTTP responses: JSON bodies, tracebacks to the log only.

Label Studio discards an error response's body and shows the exception text of its HTTP
client instead (``422 Client Error: <reason> for url: …``, protocol §2), so the message is
also the status line's reason phrase: that is how it reaches the Connect Model dialog and the
model's ``error_message``.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from prelabel._engine.diskcheck import is_store_failure
from prelabel.errors import PrelabelError, Unauthorized

__all__ = ["NESTED_TOO_DEEP", "install_error_handlers", "reason_phrase"]

log = logging.getLogger(__name__)

#: Longer reason phrases are cut: some proxies refuse status lines of several kilobytes.
MAX_REASON = 500

NESTED_TOO_DEEP = (
    "The request body is nested too deeply (Label Studio's bodies are a few levels deep); "
    "send flatter JSON."
)

#: Typographic punctuation prelabel's messages use, in ASCII.
_PUNCTUATION = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2192": "->",
    }
)


def reason_phrase(message: str) -> str:
    """``message`` as an HTTP reason phrase: one line of printable ASCII (RFC 9112 §4)."""
    # NFKD splits accents off their letters (and "…" into "..."), so "é" keeps its "e".
    text = unicodedata.normalize("NFKD", message).translate(_PUNCTUATION)
    text = text.encode("ascii", "ignore").decode()
    text = re.sub(r"[^\x20-\x7e]+", " ", text).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _body(kind: str, message: str, status: int, *, explain: bool = True) -> Response:
    """The JSON error; with ``explain``, the message is the reason phrase too."""
    response = jsonify({"error": kind, "message": message})
    reason = reason_phrase(message) if explain else ""
    # A (response, status) pair would make Flask reset the status line to the standard one.
    response.status = f"{status} {reason}" if reason else status
    return response


def install_error_handlers(app: Flask) -> None:
    """Map prelabel errors, HTTP errors and anything unexpected to JSON responses."""

    @app.errorhandler(PrelabelError)
    def _prelabel(exc: PrelabelError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        else:
            log.warning("%s: %s", type(exc).__name__, exc)
        response = _body(type(exc).__name__, str(exc), exc.status)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Basic realm="prelabel"'
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.extensions["prelabel"].settings.max_request_mb
        message = (
            f"The request body is larger than PRELABEL_MAX_REQUEST_MB ({limit:g} MB): raise "
            "that setting on the backend, or send fewer tasks per request."
        )
        log.warning("413: %s", message)
        return _body("RequestEntityTooLarge", message, 413)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        # werkzeug's descriptions are generic: the standard reason phrase says as much.
        return _body(type(exc).__name__, exc.description or exc.name, status, explain=False)

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        # JSON nested a few hundred levels parses, then overflows the stack of the next
        # walker (storing it, scoring it): the input's fault, not the server's.
        log.warning("RecursionError on %s: %s", request.path, exc)
        return _body("BadRequest", NESTED_TOO_DEEP, 400)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
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
