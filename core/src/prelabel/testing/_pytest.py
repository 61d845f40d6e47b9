"""``BackendConformance``: the kit as a pytest base class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from prelabel.backend import Backend
from prelabel.scenario import Scenario
from prelabel.testing._run import make_target
from prelabel.testing._target import CheckSkipped
from prelabel.testing.checks import CHECKS

__all__ = ["BackendConformance"]


def _make_test(check_name: str) -> Any:
    def test(self: BackendConformance, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self._run(check_name, tmp_path, request.node.nodeid)

    test.__name__ = f"test_{check_name}"
    test.__doc__ = CHECKS[check_name].__doc__
    return test


class BackendConformance:
    """Subclass in a plugin's tests and set ``backend``; every check becomes a test.

    Attributes:
        backend: entry-point name (checks discovery too) or the backend class.
        scenarios: overrides the backend's ``conformance_scenarios()``.
        expected_failures: ``{"check_name": "reason"}`` for checks that cannot pass yet; they
            run and are reported as xfail. Overriding a ``test_*`` method without listing it
            here fails ``test_no_overrides``.
    """

    backend: ClassVar[str | type[Backend]]
    scenarios: ClassVar[Sequence[Scenario] | None] = None
    expected_failures: ClassVar[Mapping[str, str]] = {}

    def _run(self, check_name: str, tmp_path: Path, test_id: str) -> None:
        target = make_target(self.backend, tmp_path, self.scenarios)
        try:
            CHECKS[check_name](target)
        except CheckSkipped as exc:
            # Every kit test is defined here, so `-ra` reports this file and line for each
            # skip: the reason must name the test.
            pytest.skip(f"{test_id}: not applicable: {exc}")
        except Exception:
            if check_name in self.expected_failures:
                pytest.xfail(self.expected_failures[check_name])
            raise

    for _name in CHECKS:
        locals()[f"test_{_name}"] = _make_test(_name)
    del _name

    def test_no_overrides(self) -> None:
        """Kit tests may be overridden only with a reason in ``expected_failures``."""
        for name in CHECKS:
            attr = f"test_{name}"
            owner = next(c for c in type(self).__mro__ if attr in c.__dict__)
            if owner is not BackendConformance and name not in self.expected_failures:
                pytest.fail(
                    f"{type(self).__name__} overrides {attr}; list {name!r} in expected_failures with a reason"
                )
        unknown = set(self.expected_failures) - set(CHECKS)
        assert not unknown, f"expected_failures names unknown checks: {sorted(unknown)}"
