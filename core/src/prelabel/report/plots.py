"""The report's figures, drawn with matplotlib and returned as ``data:`` URIs of SVG images.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot): no global state,
no display needed, safe from any thread.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prelabel.errors import ConfigError
from prelabel.report.model import ALL_VERSIONS, ProjectReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figures", "version_order"]

PROMOTED, REJECTED, NEUTRAL, CONTROL = "#2a7ab0", "#d1603d", "#8a8a8a", "#e3a21a"
OUTCOME_COLOURS = {"promoted": PROMOTED, "rejected": REJECTED, "failed": "#9b2226"}


def _figure(width: float = 6.4, height: float = 3.2) -> tuple[Figure, Axes]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "prelabel report draws its plots with matplotlib, which is not installed:"
            " pip install 'prelabel[report]'"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    # Plain metadata: the same report data gives the same bytes.
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figures(report: ProjectReport) -> dict[str, str]:
    """The figures the report has data for, by section name."""
    drawn = {
        "learning_curve": _learning_curve(report),
        "acceptance": _acceptance(report),
        "labels": _labels(report),
        "bias": _bias(report),
        "scores": _scores(report.scores),
        "training": _training(report),
    }
    return {name: uri for name, uri in drawn.items() if uri is not None}


def _learning_curve(report: ProjectReport) -> str | None:
    points = [
        (p.annotations, p.value, p)
        for p in report.learning_curve
        if p.annotations is not None and p.value is not None
    ]
    if not points:
        return None
    fig, ax = _figure()
    # The line joins the versions that were served; a rejected one was only measured.
    served = [(x, y) for x, y, p in points if p.status != "rejected"]
    ax.plot([x for x, _ in served], [y for _, y in served], color=NEUTRAL, zorder=1)
    for x, y, p in points:
        rejected = p.status == "rejected"
        ax.scatter(
            x,
            y,
            s=40,
            zorder=2,
            facecolors="white" if rejected else PROMOTED,
            edgecolors=REJECTED if rejected else PROMOTED,
        )
        ax.annotate(p.name, (x, y), fontsize=7, xytext=(3, 4), textcoords="offset points")
    ax.set_xlabel("annotated tasks when trained")
    ax.set_ylabel(report.curve_metric)
    ax.set_title("Learning curve (hollow: rejected by the promotion gate)", fontsize=10)
    ax.grid(alpha=0.3)
    return _uri(fig)


def _grouped_bars(ax: Axes, names: Sequence[str], groups: dict[str, dict[str, float]]) -> None:
    width = 0.8 / max(1, len(groups))
    for i, (group, values) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(names))]
        ax.bar(
            xs,
            [values.get(n, 0.0) for n in names],
            width,
            label=group,
            color=CONTROL if group == "control" else PROMOTED,
        )
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(names))], list(names))
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean agreement")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _acceptance(report: ProjectReport) -> str | None:
    rows = [(a.version, a.group, a.mean_agreement) for a in report.acceptance]
    title = "Acceptance per version: annotations agreeing with the model"
    return _agreement_bars(rows, version_order(report), title)


def _labels(report: ProjectReport) -> str | None:
    rows = [(a.label, a.group, a.mean_agreement) for a in report.labels]
    return _agreement_bars(rows, str, "Acceptance per predicted label")


def _agreement_bars(
    rows: Sequence[tuple[str, str, float]], order: Callable[[str], Any], title: str
) -> str | None:
    """Bars of mean agreement per name (version or label), one colour per group."""
    if not rows:
        return None
    names = sorted({name for name, _, _ in rows}, key=order)
    groups: dict[str, dict[str, float]] = {}
    for name, group, value in rows:
        groups.setdefault(group, {})[name] = value
    fig, ax = _figure()
    # "preannotated" before "control", whichever came first.
    _grouped_bars(ax, names, dict(sorted(groups.items(), reverse=True)))
    ax.set_title(title, fontsize=10)
    return _uri(fig)


def _bias(report: ProjectReport) -> str | None:
    gaps = [(v, g) for v, g in report.bias.items() if g.gap is not None]
    if not gaps:
        return None
    gaps.sort(key=lambda item: version_order(report)(item[0]))
    fig, ax = _figure()
    for i, (version, g) in enumerate(gaps):
        assert g.gap is not None and g.low is not None and g.high is not None
        colour = "#222222" if version == ALL_VERSIONS else PROMOTED
        ax.errorbar(
            i, g.gap, yerr=[[g.gap - g.low], [g.high - g.gap]], fmt="o", color=colour, capsize=4
        )
    ax.axhline(0.0, color=NEUTRAL, linewidth=1)
    ax.set_xticks(range(len(gaps)), [v for v, _ in gaps])
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_ylabel("pre-annotated - control")
    ax.set_title("Annotator bias: agreement gap with its 95% interval", fontsize=10)
    return _uri(fig)


def _scores(scores: Sequence[float]) -> str | None:
    if not scores:
        return None
    fig, ax = _figure()
    ax.hist(scores, bins=20, range=(0.0, 1.0), color=PROMOTED, edgecolor="white")
    ax.set_xlabel("prediction score (low: most worth labelling)")
    ax.set_ylabel("tasks")
    ax.set_title("Score distribution", fontsize=10)
    return _uri(fig)


def _training(report: ProjectReport) -> str | None:
    runs = [r for r in report.training or [] if r.seconds is not None]
    if not runs:
        return None
    fig, ax = _figure()
    ax.bar(
        range(len(runs)),
        [r.seconds or 0.0 for r in runs],
        color=[OUTCOME_COLOURS.get(r.outcome, NEUTRAL) for r in runs],
    )
    # Runs that made no version are named by their job number.
    ax.set_xticks(range(len(runs)), [r.version or "#" + r.job.rsplit("-", 1)[-1] for r in runs])
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.set_ylabel("seconds")
    ax.set_title("Training runs (blue promoted, orange rejected, red failed)", fontsize=10)
    return _uri(fig)


def version_order(report: ProjectReport) -> Callable[[str], tuple[int, str]]:
    """Sort key for version names: learning-curve order (oldest first), then by name.

    A name not on the curve comes first: the base model served before any training.
    """
    known = {p.name: i for i, p in enumerate(report.learning_curve)}
    return lambda name: (known.get(name, -1), name)
