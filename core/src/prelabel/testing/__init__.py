"""The conformance kit: the checks every prelabel backend must pass.

Use it from pytest (``pip install prelabel[testing]``)::

    from prelabel.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mybackend"          # entry-point name (or the class itself)

or from the shell: ``prelabel check mybackend``. Scenarios come from the backend's
``conformance_scenarios()`` unless the test class sets ``scenarios``. To call ``predict``
directly in a backend's own tests, :func:`make_context` builds the ``Context`` the server would
(and :func:`make_train_job` the ``TrainJob`` for ``fit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prelabel.scenario import Scenario, annotated_task, text_task
from prelabel.testing._context import make_context, make_train_job
from prelabel.testing._run import CheckOutcome, make_target, run_checks
from prelabel.testing._target import CheckFailed, CheckSkipped, Target, fixture, fixtures
from prelabel.testing.checks import CHECKS

if TYPE_CHECKING:
    from prelabel.testing._pytest import BackendConformance

__all__ = [
    "CHECKS",
    "BackendConformance",
    "CheckFailed",
    "CheckOutcome",
    "CheckSkipped",
    "Scenario",
    "Target",
    "annotated_task",
    "fixture",
    "fixtures",
    "make_context",
    "make_target",
    "make_train_job",
    "run_checks",
    "text_task",
]


def __getattr__(name: str) -> object:
    # The pytest base class is imported lazily so `prelabel check` works without pytest.
    if name == "BackendConformance":
        from prelabel.testing._pytest import BackendConformance

        return BackendConformance
    raise AttributeError(name)
