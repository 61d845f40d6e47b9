"""Training for SDK models: their own ``fit(event, data)``, their own versions, no gate.

A model written for Label Studio's SDK keeps its training data and ``model_version`` itself
(``self.set``/``bump_model_version``), so the server neither exports annotations, holds any
out nor promotes: each webhook that may train is recorded in the compat store, and a job
delivers the project's recorded events, in order, to the model's ``fit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prelabel._engine.jobs import Job
from prelabel._engine.policy import PolicyServices, ServedVersion, TrainingPolicy
from prelabel._engine.store import ProjectState
from prelabel.compat.adapter import CompatBackend
from prelabel.compat.base import LabelStudioMLBase
from prelabel.project import ProjectKey

__all__ = ["CompatTraining"]


class CompatTraining(TrainingPolicy):
    """The training policy of a :class:`~prelabel.compat.adapter.CompatBackend`."""

    def __init__(self, runtime: PolicyServices) -> None:
        super().__init__(runtime)
        backend = runtime.backend
        if not isinstance(backend, CompatBackend):
            raise TypeError(f"CompatTraining serves a CompatBackend, got {type(backend).__name__}")
        self.backend = backend

    @property
    def trains(self) -> bool:
        # Every SDK model has a fit (the base class's does nothing), as under the SDK.
        return True

    def served_version(self, state: ProjectState) -> ServedVersion:
        version = self.backend.current_version(state.key, state.label_config, state.extra_params)
        return ServedVersion(version, None)

    def wants_training(self, key: ProjectKey, body: Mapping[str, Any]) -> bool:
        """Keep each training webhook's body for ``fit``, and ask for a job to deliver it."""
        if body.get("action") not in LabelStudioMLBase.TRAIN_EVENTS:
            return False
        self.backend.store.add_event(str(key), dict(body))
        return True

    def run(self, job: Job) -> dict[str, Any]:
        key = str(job.project)
        delivered = self.backend.train_events(key, self.backend.store.take_events(key))
        if not delivered["trained"]:
            return delivered
        return {
            "trained": True,
            "version": delivered["model_version"],
            "metrics": {"events": float(delivered["events"])},
            "results": delivered["results"],
        }
