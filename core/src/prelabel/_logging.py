"""Logging set-up shared by the command line and the job processes it starts."""

from __future__ import annotations

import logging
import os

__all__ = ["setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OneLineFormatter(logging.Formatter):
    """Escapes line breaks in messages, so a value from a request cannot forge a log line.

    Tracebacks keep their lines: they come from the code, not from callers.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


def setup_logging() -> None:
    """Log to stderr at ``PRELABEL_LOG_LEVEL``, one line per record."""
    level = os.environ.get("PRELABEL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format=_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_OneLineFormatter(_FORMAT))
    # httpx logs every URL at INFO, presigned signatures included: keep it to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
