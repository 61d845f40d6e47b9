"""Annotator bias: how much more annotators agree with the model when they are shown it.

The control group (``PRELABEL_CONTROL_FRACTION``) gets empty predictions; the model's answer
for those tasks is recorded but not shown. With unbiased annotators, the annotations agree with
the model equally often in both groups. The **gap** is the pre-annotated group's mean agreement
minus the control group's: the share of annotations that follow the model only because it was
shown. If annotators accept a shown suggestion with probability ``p`` and otherwise label
independently, the gap is ``p x (1 - control agreement)``, so ``p ≈ gap / (1 - control)``.

Interval: Newcombe's hybrid score interval for a difference of proportions (Newcombe 1998,
"Interval estimation for the difference between independent proportions", method 10), built
from each group's Wilson score interval. Why this one: a choice's agreement is 0 or 1, so a
group's mean is a proportion; the textbook Wald interval (difference ± z·SE) has zero width
when a group agrees 100% and covers too rarely for small groups, and a control group of 10%
is small by design. Newcombe's interval keeps close to its nominal coverage down to a handful
of annotations per group. Agreement between regions (IoU, F1) lies anywhere in [0, 1]; a value
in [0, 1] with mean μ has variance at most μ(1 - μ), so treating the mean as a proportion errs
on the wide side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol

__all__ = ["BiasGap", "GroupStats", "agreement_gap", "gaps_by_version", "wilson_interval"]

#: How the interval is computed (reported with every gap).
METHOD = "newcombe-wilson"


@dataclass(frozen=True)
class BiasGap:
    """Pre-annotated minus control mean agreement, with its confidence interval.

    Attributes:
        gap: the difference; ``None`` when a group has no annotations.
        low, high: the interval's bounds (``None`` with ``gap``).
        preannotated, control: annotations behind each group's mean.
        confidence: the interval's nominal coverage, e.g. 0.95.
    """

    gap: float | None
    low: float | None
    high: float | None
    preannotated: int
    control: int
    confidence: float = 0.95
    method: str = METHOD


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(mean: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``mean`` observed over ``n`` trials.

    Raises:
        ValueError: ``n < 1``, ``mean`` outside [0, 1] or ``confidence`` outside (0, 1).
    """
    if n < 1:
        raise ValueError(f"a proportion needs at least one observation, got n={n}")
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean agreement must be in [0, 1], got {mean}")
    z = _z(confidence)
    z2n = z * z / n
    centre = (mean + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(mean * (1.0 - mean) / n + z2n / (4.0 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def agreement_gap(
    preannotated: tuple[float, int], control: tuple[float, int], confidence: float = 0.95
) -> BiasGap:
    """The gap between two groups given as ``(mean agreement, annotations)``.

    A group without annotations leaves the gap undefined (``gap`` is ``None``).
    """
    (p1, n1), (p2, n2) = preannotated, control
    if n1 < 1 or n2 < 1:
        return BiasGap(None, None, None, max(n1, 0), max(n2, 0), confidence)
    l1, u1 = wilson_interval(p1, n1, confidence)
    l2, u2 = wilson_interval(p2, n2, confidence)
    gap = p1 - p2
    low = gap - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = gap + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return BiasGap(gap, low, high, n1, n2, confidence)


class GroupStats(Protocol):
    """One (project, model version, group) aggregate, e.g. ``AcceptanceStats``."""

    @property
    def project(self) -> str: ...
    @property
    def model_version(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def annotations(self) -> int: ...
    @property
    def mean_agreement(self) -> float: ...


def gaps_by_version(
    stats: Iterable[GroupStats], confidence: float = 0.95
) -> dict[tuple[str, str], BiasGap]:
    """The gap per ``(project, model version)`` from per-group aggregates.

    Groups are ``"preannotated"`` and ``"control"``; a version seen in one group only gets a
    gap of ``None`` with its annotation counts.
    """
    groups: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}
    for s in stats:
        groups.setdefault((s.project, s.model_version), {})[s.group] = (
            s.mean_agreement,
            s.annotations,
        )
    return {
        key: agreement_gap(
            found.get("preannotated", (0.0, 0)), found.get("control", (0.0, 0)), confidence
        )
        for key, found in groups.items()
    }
