"""Everything one server process holds: built once in ``create_app``, never per request."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prelabel._server.telemetry import Telemetry
from prelabel.acceptance import AcceptanceTracker
from prelabel.backend import Backend, Context
from prelabel.config import LabelConfig
from prelabel.errors import InvalidExtraParams
from prelabel.jobs import JobQueue, JobRunner
from prelabel.lsclient import LabelStudioClient
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.runner import PredictionRunner
from prelabel.settings import BackendSettings, CoreSettings
from prelabel.store import ProjectState, ProjectStore

__all__ = ["ServerState"]

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """The process-wide objects behind the routes (stored in ``app.extensions["prelabel"]``)."""

    backend: Backend
    settings: CoreSettings
    store: ProjectStore
    queue: JobQueue
    acceptance: AcceptanceTracker
    telemetry: Telemetry
    media: MediaResolver
    client: LabelStudioClient | None
    runner: PredictionRunner
    job_runner: JobRunner | None = None
    _settings_cache: dict[str, BackendSettings] = field(default_factory=dict)

    def version_for(self, key: ProjectKey) -> tuple[str, Path | None]:
        """The model version served for a project and its artifacts directory."""
        if self.backend.trains_itself:
            project = self.store.project(key)
            own = self.backend.project_version(key, project.label_config, project.extra_params)
            if own is not None:
                return own, None
        current = self.store.current_version(key)
        if current is None:
            return self.backend.version, None
        return current.name, current.path

    def settings_for(self, extra_params: Mapping[str, Any]) -> BackendSettings:
        """Backend settings with a project's ``extra_params`` applied (bad ones: 422)."""
        if not extra_params:
            return self.backend.settings
        cache_key = json.dumps(extra_params, sort_keys=True, default=str)
        cached = self._settings_cache.get(cache_key)
        if cached is not None:
            return cached
        base = self.backend.settings
        try:
            merged = type(base).model_validate({**base.model_dump(), **extra_params})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            known = ", ".join(sorted(type(base).model_fields)) or "none"
            raise InvalidExtraParams(
                f"Invalid extra_params for the {self.backend.name} backend: {problems}. "
                f"Accepted keys: {known}."
            ) from None
        if len(self._settings_cache) < 256:
            self._settings_cache[cache_key] = merged
        return merged

    def context(
        self,
        key: ProjectKey,
        project: ProjectState,
        config: LabelConfig,
        params: Mapping[str, Any] | None = None,
        interaction: Sequence[Mapping[str, Any]] = (),
    ) -> Context:
        """The :class:`Context` of a call for ``project`` with ``config`` and request ``params``."""
        version, model_dir = self.version_for(key)
        params = params or {}
        return Context(
            project=key,
            label_config=config,
            model_version=version,
            model_dir=model_dir,
            settings=self.settings_for(project.extra_params),
            extra_params=project.extra_params,
            media=self.media_for(project, params),
            interaction=list(interaction),
            params={k: v for k, v in params.items() if k != "context"},
        )

    def prefetch(self, key: ProjectKey, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Let the backend get ready for new tasks (``Backend.prefetch``); never raises."""
        if not tasks or type(self.backend).prefetch is Backend.prefetch:
            return
        project = self.store.project(key)
        if not project.label_config:
            log.debug("Project %s has no labeling config yet; nothing to prefetch.", key)
            return
        try:
            config = LabelConfig.cached(project.label_config)
            self.backend.check_config(config)
            self.backend.prefetch(tasks, self.context(key, project, config))
        except Exception:
            # Getting ready is an optimisation: it must never fail the webhook.
            log.warning(
                "Backend %s could not prefetch for project %s.",
                self.backend.name,
                key,
                exc_info=True,
            )

    def media_for(
        self, state: ProjectState, params: Mapping[str, Any] | None = None
    ) -> MediaResolver:
        """A media resolver with the project's ``/setup`` credentials and the request's login."""
        params = params or {}
        login, password = params.get("login"), params.get("password")
        return self.media.with_credentials(
            hostname=state.hostname,
            access_token=state.access_token,
            login=login if isinstance(login, str) else None,
            password=password if isinstance(password, str) else None,
        )

    def client_for(self, state: ProjectState) -> LabelStudioClient | None:
        """The LS API client: from LABEL_STUDIO_URL/API_KEY, else from ``/setup``'s values."""
        # The resolver keeps one client per (LS URL, key), so access tokens are reused.
        return self.media_for(state).client

    def record_acceptance(
        self, key: ProjectKey, task: Mapping[str, Any], annotation: Mapping[str, Any]
    ) -> None:
        try:
            self.acceptance.record_annotation(key, task, annotation)
        except Exception:
            # Metrics must never cost an annotation event.
            log.exception("Could not record acceptance for project %s.", key)

    def wake_jobs(self) -> None:
        if self.job_runner is not None:
            self.job_runner.wake()
