"""The report as one self-contained HTML page: figures inline, every number in a table."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

from prelabel.report.model import ProjectReport
from prelabel.report.plots import figures, version_order

__all__ = ["render"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
h3 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } .note { color: #555; font-style: italic; }
"""


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _table(table_id: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, int | float) or cell is None:
                cells.append(f'<td class="num">{_num(cell)}</td>')
            else:
                cells.append(f"<td>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(body)}</table>'


def _figure(uris: dict[str, str], name: str, alt: str) -> str:
    uri = uris.get(name)
    return f'<img src="{uri}" alt="{html.escape(alt)}">' if uri else ""


def _project(report: ProjectReport) -> str:
    uris = figures(report)
    slug = report.project.replace(".", "_")
    order = version_order(report)
    parts = [
        f"<h2>Project {html.escape(report.project)}</h2>",
        f"<p>Source: {html.escape(report.source)}</p>",
    ]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in report.notes]

    parts.append("<h3>Learning curve</h3>")
    parts.append(_figure(uris, "learning_curve", "learning curve"))
    parts.append(
        _table(
            f"curve-{slug}",
            ["version", "status", "annotated tasks", report.curve_metric],
            [(p.name, p.status, p.annotations, p.value) for p in report.learning_curve],
        )
    )

    parts.append("<h3>Acceptance per version</h3>")
    parts.append(_figure(uris, "acceptance", "acceptance per version"))
    rows = sorted(report.acceptance, key=lambda a: (order(a.version), a.group))
    parts.append(
        _table(
            f"acceptance-{slug}",
            ["version", "group", "annotations", "mean agreement"],
            [(a.version, a.group, a.annotations, a.mean_agreement) for a in rows],
        )
    )

    parts.append("<h3>Acceptance per predicted label</h3>")
    parts.append(_figure(uris, "labels", "acceptance per label"))
    parts.append(
        _table(
            f"labels-{slug}",
            ["label", "group", "annotations", "mean agreement"],
            [(a.label, a.group, a.annotations, a.mean_agreement) for a in report.labels],
        )
    )

    parts.append("<h3>Annotator bias (control group)</h3>")
    if report.bias:
        parts.append(
            "<p>Gap = mean agreement of pre-annotated tasks minus that of control tasks (shown"
            " no prediction); 95% interval by Newcombe's hybrid score method. A gap above 0"
            " means annotators follow suggestions they would not have made on their own. The"
            " 'all versions' row pools every version, counting the tasks where the model"
            " suggested something.</p>"
        )
        parts.append(_figure(uris, "bias", "bias gap"))
        gaps = sorted(report.bias.items(), key=lambda item: order(item[0]))
        parts.append(
            _table(
                f"bias-{slug}",
                ["version", "gap", "95% low", "95% high", "pre-annotated", "control"],
                [(v, g.gap, g.low, g.high, g.preannotated, g.control) for v, g in gaps],
            )
        )
    else:
        parts.append('<p class="note">No control-group comparison in this source.</p>')

    parts.append("<h3>Score distribution</h3>")
    parts.append(_figure(uris, "scores", "score histogram"))
    scores = sorted(report.scores)
    parts.append(
        _table(
            f"scores-{slug}",
            ["predictions with a score", "min", "median", "max"],
            [
                (
                    len(scores),
                    scores[0] if scores else None,
                    scores[len(scores) // 2] if scores else None,
                    scores[-1] if scores else None,
                )
            ],
        )
    )

    parts.append("<h3>Training history</h3>")
    if report.training is None:
        parts.append('<p class="note">Not available from this source.</p>')
    else:
        parts.append(_figure(uris, "training", "training durations"))
        parts.append(
            _table(
                f"training-{slug}",
                ["job", "trigger", "started", "seconds", "outcome", "version", "why"],
                [
                    (
                        r.job,
                        r.trigger,
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
                        if r.started_at is not None
                        else "—",
                        r.seconds,
                        r.outcome,
                        r.version or "—",
                        r.why,
                    )
                    for r in report.training
                ],
            )
        )
    return "\n".join(p for p in parts if p)


def render(reports: Sequence[ProjectReport], *, title: str = "prelabel report") -> str:
    """The HTML page for ``reports`` (one section per project)."""
    sections = "\n".join(_project(r) for r in reports) or "<p>No projects.</p>"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>"
        f"{sections}</body></html>\n"
    )
