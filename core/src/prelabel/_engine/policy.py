"""The training seam: how a backend's jobs run and which version each project serves.

One :class:`TrainingPolicy` per runtime, chosen when it is built
(:func:`prelabel._engine.runtime.build_runtime`): the gated champion/challenger loop
(:class:`prelabel._engine.training.GatedTraining`) by default; ``prelabel.compat`` supplies its
own (SDK models keep their own data and versions). A policy works through the runtime's
services, described here by :class:`PolicyServices` so this layer does not depend on the
runtime module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.store import ProjectState, ProjectStore
from prelabel._ls.client import LabelStudioClient
from prelabel.backend import Backend, Context, TrainJob
from prelabel.config import LabelConfig
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings

__all__ = ["PolicyServices", "ServedVersion", "TrainingPolicy"]


@dataclass(frozen=True)
class ServedVersion:
    """The model version a project is served with, and its artifacts (``None``: base model)."""

    name: str
    path: Path | None


class PolicyServices(Protocol):
    """What a policy uses of the runtime (:class:`prelabel._engine.runtime.Runtime`)."""

    backend: Backend
    settings: CoreSettings
    store: ProjectStore
    queue: JobQueue

    def client_for(self, state: ProjectState) -> LabelStudioClient | None: ...

    def ls_api(self) -> LabelStudioClient | None: ...

    def context(
        self,
        state: ProjectState,
        *,
        label_config: LabelConfig,
        served: ServedVersion | None = None,
        params: Mapping[str, Any] | None = None,
        interaction: Sequence[Mapping[str, Any]] = (),
        media: MediaResolver | None = None,
    ) -> Context: ...

    def train_job(
        self,
        state: ProjectState,
        *,
        label_config: LabelConfig,
        tasks: Sequence[Mapping[str, Any]],
        holdout: Sequence[Mapping[str, Any]] = (),
        workdir: Path,
        reason: str = "",
        served: ServedVersion | None = None,
        media: MediaResolver | None = None,
    ) -> TrainJob: ...


class TrainingPolicy(ABC):
    """How training jobs run for one backend, and which version each project serves."""

    def __init__(self, runtime: PolicyServices) -> None:
        self.runtime = runtime

    @property
    def trains(self) -> bool:
        """Whether webhooks may start training jobs at all (by default: the backend has ``fit``)."""
        return self.runtime.backend.trainable

    @abstractmethod
    def served_version(self, state: ProjectState) -> ServedVersion:
        """The version ``/setup`` reports and ``/predict`` stamps; called on every request."""

    def wants_training(self, key: ProjectKey, body: Mapping[str, Any]) -> bool:
        """See a webhook that may train (before the server stores it); ``True`` asks for a job.

        Must return in milliseconds: LS waits at most 1 s for event webhooks.
        """
        return False

    def due(self, key: ProjectKey, changes: int) -> bool:
        """``changes`` annotations of the project were added, changed or deleted: train now?

        By default every change trains (coalesced into one queued job).
        """
        return changes > 0

    def start_training_payload(self) -> dict[str, Any]:
        """What a START_TRAINING job carries (e.g. ``{"pull": True}``: re-export from LS)."""
        return {}

    @abstractmethod
    def run(self, job: Job) -> dict[str, Any]:
        """Run one training job; the returned dict becomes the job's ``result``."""
