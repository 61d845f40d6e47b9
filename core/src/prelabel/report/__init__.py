"""``prelabel report``: one self-contained HTML page about a project's learning loop.

Learning curve per version, acceptance per version and per predicted label, the control
group's bias gap with its interval, the score distribution and the training history. Read
from a backend's store (:func:`report_from_store`) or, offline, from a Label Studio JSON
export (:func:`report_from_export`); drawn with matplotlib (``pip install 'prelabel[report]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prelabel.report.from_export import report_from_export
from prelabel.report.from_store import report_from_store
from prelabel.report.html import render
from prelabel.report.model import ProjectReport

__all__ = ["ProjectReport", "render", "report_from_export", "report_from_store", "write_report"]


def write_report(reports: Sequence[ProjectReport], path: Path) -> Path:
    """Render ``reports`` into the HTML file ``path``; returns it."""
    path.write_text(render(reports), encoding="utf-8")
    return path
