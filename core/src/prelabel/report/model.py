"""What a report shows for one project, whichever source it was read from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prelabel.metrics.bias import BiasGap

__all__ = [
    "ALL_VERSIONS",
    "GroupAcceptance",
    "LabelAcceptance",
    "ProjectReport",
    "Record",
    "TrainingRun",
    "VersionPoint",
    "summarise",
]


#: The key of the bias gap that pools every version's annotations.
ALL_VERSIONS = "all versions"


@dataclass(frozen=True)
class VersionPoint:
    """One model version on the learning curve.

    Attributes:
        name: the version, e.g. ``"textcls-3"``.
        status: ``"current"``, ``"previous"``, ``"retired"`` or ``"rejected"`` (from a store);
            ``"served"`` (from an export).
        annotations: annotated tasks the project had when the version was made.
        value: its score on the curve's metric; ``None`` when it was not measured.
    """

    name: str
    status: str
    annotations: int | None
    value: float | None


@dataclass(frozen=True)
class GroupAcceptance:
    """Mean agreement of one version's predictions with the annotations of one group."""

    version: str
    group: str
    annotations: int
    mean_agreement: float


@dataclass(frozen=True)
class LabelAcceptance:
    """Mean agreement where the model predicted ``label``, per group, over all versions."""

    label: str
    group: str
    annotations: int
    mean_agreement: float


@dataclass(frozen=True)
class TrainingRun:
    """One training job: when, how long, and what came of it.

    ``outcome`` is ``"promoted"``, ``"rejected"``, ``"not trained"``, ``"failed"``, or the
    job's status while it is not finished; ``why`` explains it in words.
    """

    job: str
    trigger: str
    started_at: float | None
    seconds: float | None
    outcome: str
    version: str | None
    why: str


@dataclass(frozen=True)
class Record:
    """One annotation compared with the prediction for its task.

    ``suggested``: the prediction had regions (an empty one suggests nothing to accept).
    """

    version: str
    group: str
    agreement: float
    labels: Sequence[str] | None
    suggested: bool = True


@dataclass
class ProjectReport:
    """Everything the HTML report shows for one project.

    ``training`` is ``None`` when the source has no training history (an export);
    ``notes`` say what the source could not tell.
    """

    project: str
    source: str
    curve_metric: str
    learning_curve: list[VersionPoint] = field(default_factory=list)
    acceptance: list[GroupAcceptance] = field(default_factory=list)
    labels: list[LabelAcceptance] = field(default_factory=list)
    #: Bias gap per version, and over all of them under :data:`ALL_VERSIONS`.
    bias: dict[str, BiasGap] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    training: list[TrainingRun] | None = None
    notes: list[str] = field(default_factory=list)


def summarise(records: Iterable[Record]) -> tuple[list[GroupAcceptance], list[LabelAcceptance]]:
    """Mean agreement per (version, group) and per (predicted label, group)."""
    by_version: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_label: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        by_version[(r.version, r.group)].append(r.agreement)
        for label in r.labels or ():
            by_label[(label, r.group)].append(r.agreement)
    versions = [
        GroupAcceptance(v, g, len(xs), sum(xs) / len(xs)) for (v, g), xs in by_version.items()
    ]
    labels = [
        LabelAcceptance(lbl, g, len(xs), sum(xs) / len(xs))
        for (lbl, g), xs in sorted(by_label.items())
    ]
    return versions, labels
