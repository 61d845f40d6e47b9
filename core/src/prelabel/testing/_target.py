"""What every conformance check works on: the backend under test, its scenarios, the recorded
LS requests, and the two outcomes besides passing (failed, skipped)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from prelabel.backend import Backend, Context
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.scenario import Scenario
from prelabel.settings import CoreSettings
from prelabel.testing._context import make_context

__all__ = [
    "CheckFailed",
    "CheckSkipped",
    "Target",
    "fixture",
    "fixtures",
    "require",
    "scenarios_of",
]


class CheckFailed(AssertionError):
    """A conformance check failed; the message says what broke."""


class CheckSkipped(Exception):
    """The check does not apply to this backend (the reason is the message)."""


@dataclass
class Target:
    """The backend under test and its scenarios."""

    backend_cls: type[Backend]
    scenarios: Sequence[Scenario]
    workdir: Path
    entry_point: str | None = None
    _instance: Backend | None = field(default=None, repr=False)

    def backend(self) -> Backend:
        """One loaded instance shared by the checks (loading can be slow)."""
        if self._instance is None:
            self._instance = self.backend_cls()
            self._instance.load()
        return self._instance

    def core_settings(self, **overrides: Any) -> CoreSettings:
        return CoreSettings(
            model_dir=self.workdir / "model-dir", job_runner="external", **overrides
        )

    def context(
        self, scenario: Scenario, *, model_dir: Path | None = None, interactive: bool = False
    ) -> Context:
        return make_context(
            self.backend(),
            scenario.label_config,
            media=MediaResolver(self.core_settings()),
            project=ProjectKey("1", 1700000000),
            model_version="conformance",
            model_dir=model_dir,
            extra_params=scenario.settings,
            interaction=scenario.interaction if interactive else (),
        )


def fixtures() -> list[str]:
    """Names of the recorded LS 1.23.2 requests shipped with the kit."""
    root = resources.files("prelabel.testing") / "fixtures" / "ls-1.23.2"
    return sorted(p.name.removesuffix(".json") for p in root.iterdir() if p.name.endswith(".json"))


def fixture(name: str) -> dict[str, Any]:
    """A recorded LS 1.23.2 request: ``{"method", "path", "headers", "json"}``."""
    path = resources.files("prelabel.testing") / "fixtures" / "ls-1.23.2" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def scenarios_of(target: Target) -> Sequence[Scenario]:
    require(
        bool(target.scenarios),
        f"{target.backend_cls.__name__} has no conformance scenarios: implement "
        "conformance_scenarios() or set `scenarios` on the test class.",
    )
    return target.scenarios
