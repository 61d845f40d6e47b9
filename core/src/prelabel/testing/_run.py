"""Running the kit: a :class:`Target` for a backend, and every check against it."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prelabel.backend import Backend
from prelabel.registry import load_backend
from prelabel.scenario import Scenario
from prelabel.testing._target import CheckSkipped, Target
from prelabel.testing.checks import CHECKS

__all__ = ["CheckOutcome", "make_target", "run_checks"]


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check run by :func:`run_checks`."""

    check: str
    status: Literal["passed", "failed", "skipped"]
    message: str = ""
    troubleshooting: str = ""


def make_target(
    backend: str | type[Backend], workdir: Path, scenarios: Sequence[Scenario] | None = None
) -> Target:
    """A :class:`Target` for an entry-point name or a backend class."""
    cls = load_backend(backend) if isinstance(backend, str) else backend
    return Target(
        backend_cls=cls,
        scenarios=list(scenarios if scenarios is not None else cls.conformance_scenarios()),
        workdir=workdir,
        entry_point=backend if isinstance(backend, str) else None,
    )


def run_checks(
    backend: str | type[Backend], scenarios: Sequence[Scenario] | None = None
) -> list[CheckOutcome]:
    """Run every check against ``backend``; never raises for a failing check."""
    outcomes: list[CheckOutcome] = []
    with tempfile.TemporaryDirectory(prefix="prelabel-check-") as tmp:
        target = make_target(backend, Path(tmp), scenarios)
        for name, check in CHECKS.items():
            doc = (check.__doc__ or "").split("Troubleshooting:", 1)
            help_text = " ".join(doc[1].split()) if len(doc) > 1 else ""
            try:
                check(target)
            except CheckSkipped as exc:
                outcomes.append(CheckOutcome(name, "skipped", str(exc)))
            except Exception as exc:  # a crash in the backend is a failed check, reported as such
                outcomes.append(
                    CheckOutcome(name, "failed", f"{type(exc).__name__}: {exc}", help_text)
                )
            else:
                outcomes.append(CheckOutcome(name, "passed"))
    return outcomes
