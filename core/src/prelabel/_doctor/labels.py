"""The doctor's labels check: the labeling config against what the backend can predict."""

from __future__ import annotations

from collections.abc import Sequence

from prelabel._doctor.report import Finding, Status
from prelabel.backend import Backend
from prelabel.config import LabelConfig, LabelCoverage
from prelabel.errors import PrelabelError

__all__ = ["check_labels", "coverage_line"]

#: Model classes listed per control before "… and N more".
SHOWN = 6


def _listing(names: Sequence[str]) -> str:
    more = f" … and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def coverage_line(coverage: LabelCoverage) -> str:
    """One line: which labels of the control the backend can predict, and how."""
    head = f"{coverage.control} ({coverage.tag}): "
    labels = _listing(coverage.labels) if coverage.labels else "labels from each task's data"
    if coverage.source == "learned":
        return head + f"learns {labels} from annotations (nothing before the first training)"
    if coverage.source == "prompt":
        return head + f"the model is asked to choose among {labels}"
    if coverage.source == "unknown":
        return head + "filled (the backend does not say which labels)"
    mapped = [f"{model}→{label}" if model != label else label
              for model, label in coverage.mapping.items()]  # fmt: skip
    parts = [f"model classes {_listing(mapped)}" if mapped else "no model class maps to a label"]
    if coverage.unreachable:
        parts.append(f"never predicted: {_listing(coverage.unreachable)}")
    if coverage.unmapped:
        parts.append(f"{len(coverage.unmapped)} classes dropped ({_listing(coverage.unmapped)})")
    return head + "; ".join(parts)


def check_labels(backend: Backend, config: LabelConfig) -> Finding:
    """The backend accepts ``config``; which labels it can predict, per control."""
    try:
        backend.check_config(config)
        coverage = list(backend.label_coverage(config))
    except PrelabelError as exc:
        return Finding(
            "labels", "fail", f"the {backend.name} backend refuses this labeling config", str(exc)
        )
    details = [coverage_line(c) for c in coverage]
    filled = {c.control for c in coverage}
    ignored = [f"{c.name} ({c.tag})" for c in config.controls.values() if c.name not in filled]
    if ignored:
        details.append(f"not filled by {backend.name}: {_listing(ignored)}")
    unreachable = [f"{c.control}: {_listing(c.unreachable)}" for c in coverage if c.unreachable]
    status: Status = "warn" if unreachable else "ok"
    summary = (
        f"{backend.name} fills {len(coverage)} of the config's {len(config.controls)} controls"
    )
    fix = ""
    if unreachable:
        summary += f"; labels it can never predict — {'; '.join(unreachable)}"
        fix = (
            'Name those labels like the model\'s classes, or add predicted_values="class,…" to '
            "each <Label> (several classes may map to one label); or fine-tune the model on "
            "annotations that use them."
        )
    return Finding("labels", status, summary, fix, details)
