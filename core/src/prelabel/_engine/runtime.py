"""The runtime: every service one backend needs, built once per process without Flask.

``create_app`` (the HTTP server), ``prelabel worker`` (training jobs) and the kit's
``make_context``/``make_train_job`` all start from :func:`build_runtime`, and the runtime is
the only place that builds a :class:`~prelabel.Context` or a :class:`~prelabel.TrainJob`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prelabel._engine.acceptance import AcceptanceTracker
from prelabel._engine.artifacts import ArtifactStore
from prelabel._engine.bulk_job import run_predict_job
from prelabel._engine.diskcheck import WriteFailures, require_writable, unwritable
from prelabel._engine.engines import database_target, open_database
from prelabel._engine.errorlog import ErrorLog
from prelabel._engine.jobrunner import JobRunner
from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.liveness import WorkerRegistry
from prelabel._engine.policy import ServedVersion, TrainingPolicy
from prelabel._engine.projectsetup import merge_extra_params
from prelabel._engine.runner import PredictionRunner, RunStats
from prelabel._engine.selector import SelectorSync
from prelabel._engine.store import ProjectState, ProjectStore
from prelabel._engine.telemetry import Telemetry
from prelabel._engine.training import GatedTraining
from prelabel._ls.client import LabelStudioClient
from prelabel.backend import Backend, Context, TrainJob
from prelabel.config import LabelConfig
from prelabel.errors import PrelabelError, ServiceUnavailable
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.registry import discover, load_backend, select_backend
from prelabel.settings import BackendSettings, CoreSettings, check_environment, load_settings
from prelabel.threads import Role, threads_for

if TYPE_CHECKING:
    from prelabel._engine.rqjobs import RqDelivery

__all__ = ["PolicyFactory", "Runtime", "build_runtime", "make_backend"]

log = logging.getLogger(__name__)

#: Builds the training policy for a runtime (the default: :class:`GatedTraining`).
PolicyFactory = Callable[["Runtime"], TrainingPolicy]


def make_backend(name: str | None = None, settings: CoreSettings | None = None) -> Backend:
    """Instantiate the selected backend with its settings from the environment (not loaded)."""
    settings = settings or load_settings(CoreSettings)
    cls = load_backend(select_backend(name or settings.backend))
    others = [f"PRELABEL_{n.upper()}_" for n in discover() if n != cls.name]
    check_environment(os.environ, {cls.env_prefix(): cls.Settings}, ignore_prefixes=others)
    return cls()


@dataclass(eq=False)
class Runtime:
    """The process-wide services of one backend; see :func:`build_runtime`."""

    backend: Backend
    settings: CoreSettings
    store: ProjectStore
    queue: JobQueue
    acceptance: AcceptanceTracker
    telemetry: Telemetry
    media: MediaResolver
    runner: PredictionRunner
    workers: WorkerRegistry
    errors: ErrorLog
    policy: TrainingPolicy = field(init=False)
    selector: SelectorSync = field(init=False)
    job_runner: JobRunner | None = None
    write_failures: WriteFailures = field(default_factory=WriteFailures)
    #: Delivers jobs to RQ workers (``PRELABEL_REDIS_URL``); ``None`` without Redis.
    delivery: RqDelivery | None = None
    _settings_cache: dict[str, BackendSettings] = field(default_factory=dict)
    _data_dirs: set[Path] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- per project -----------------------------------------------------------------------

    def served_version(self, state: ProjectState) -> ServedVersion:
        """The version a project is served with (the training policy decides)."""
        return self.policy.served_version(state)

    def settings_for(self, extra_params: Mapping[str, Any]) -> BackendSettings:
        """Backend settings with a project's ``extra_params`` applied (bad ones: 422)."""
        base = self.backend.settings
        if not extra_params:
            return base
        cache_key = json.dumps(extra_params, sort_keys=True, default=str)
        cached = self._settings_cache.get(cache_key)
        if cached is not None:
            return cached
        merged = merge_extra_params(self.backend, extra_params)
        # Bounded in count and size: extra_params come from callers.
        if len(self._settings_cache) < 256 and len(cache_key) <= 64 * 1024:
            self._settings_cache[cache_key] = merged
        return merged

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

    def ls_api(self) -> LabelStudioClient | None:
        """The client configured by ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``, if both are.

        What prelabel uses to act on projects by itself (re-predicting, selecting versions);
        ``/setup``'s hostname and token only ever fetch media and annotations.
        """
        client = self.media.client
        return client if client is not None and client.token_kind != "none" else None

    def check_project(
        self, key: ProjectKey, config: LabelConfig, settings: BackendSettings, *, source: str
    ) -> None:
        """The backend's checks of a project's config and settings, before ``/setup`` or
        ``/predict`` answer; a failure also becomes the project's last error.

        Raises:
            PrelabelError: what the backend raised (``UnsupportedConfig``, ``ConfigError``…).
        """
        try:
            self.backend.check_config(config)
            self.backend.check_settings(settings)
        except PrelabelError as exc:
            self.note_error(key, source, str(exc))
            raise

    def note_error(self, key: ProjectKey, source: str, message: str) -> None:
        """Make ``message`` the project's last error (``/health``, ``/jobs``); never raises."""
        try:
            self.errors.record(key, source, message)
        except Exception:
            # Bookkeeping must never cost the request it describes.
            log.exception("Could not record an error of project %s.", key)

    def observe_run(self, stats: RunStats) -> None:
        """Count a ``/predict`` call's tasks in ``/metrics``; note why the last one failed."""
        self.telemetry.observe_run(stats)
        if stats.last_error is not None:
            total = stats.predicted + stats.empty + stats.failed + stats.control
            self.note_error(
                stats.project,
                "predict",
                f"{stats.failed} of {total} tasks got no prediction; {stats.last_error}",
            )

    def served_versions(self) -> dict[str, str]:
        """The version each project the store knows is served with (``/metrics``)."""
        return {
            str(key): self.served_version(self.store.project(key)).name
            for key in self.store.projects()
        }

    def data_dir(self, key: ProjectKey) -> Path:
        """``<model dir>/projects/<slug>/data``: the project's directory for backend data."""
        path = self.store.root / "projects" / key.slug / "data"
        if path not in self._data_dirs:
            path.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._data_dirs.add(path)
        return path

    # -- what backends are handed ---------------------------------------------------------------

    def context(
        self,
        state: ProjectState,
        *,
        label_config: LabelConfig,
        served: ServedVersion | None = None,
        params: Mapping[str, Any] | None = None,
        interaction: Sequence[Mapping[str, Any]] = (),
        media: MediaResolver | None = None,
    ) -> Context:
        """The :class:`~prelabel.Context` for one call of ``predict`` or ``evaluate``.

        Args:
            state: the project.
            label_config: the labeling config of the call.
            served: the version to run; by default the one the project is served with.
            params: the request's ``params`` (``login``/``password`` for task URLs).
            interaction: ``params.context.result`` of an interactive call.
            media: a resolver to use instead of the project's (tests).
        """
        served = served or self.served_version(state)
        params = params or {}
        return Context(
            project=state.key,
            label_config=label_config,
            model_version=served.name,
            model_dir=served.path,
            settings=self.settings_for(state.extra_params),
            extra_params=state.extra_params,
            media=media or self.media_for(state, params),
            data_dir=self.data_dir(state.key),
            interaction=list(interaction),
            params={k: v for k, v in params.items() if k != "context"},
            shared_database=None
            if self.store.database.dialect == "sqlite"
            else self.store.database,
            on_dropped=self.telemetry.count_dropped,
        )

    def prefetch(self, key: ProjectKey, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Let the backend get ready for new tasks (:meth:`Backend.prefetch`); never raises."""
        if not tasks or type(self.backend).prefetch is Backend.prefetch:
            return
        state = self.store.project(key)
        if not state.label_config:
            log.debug("Project %s has no labeling config yet; nothing to prefetch.", key)
            return
        try:
            config = LabelConfig.cached(state.label_config)
            self.backend.check_config(config)
            self.backend.prefetch(tasks, self.context(state, label_config=config))
        except Exception:
            # Getting ready is an optimisation: it must never fail the webhook.
            log.warning(
                "Backend %s could not prefetch for project %s.",
                self.backend.name,
                key,
                exc_info=True,
            )

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
    ) -> TrainJob:
        """The :class:`~prelabel.TrainJob` one ``fit`` call gets.

        ``base_dir`` is the artifacts of ``served`` (by default the version the project is
        served with), which ``fit`` fine-tunes from.
        """
        return TrainJob(
            project=state.key,
            label_config=label_config,
            tasks=[dict(t) for t in tasks],
            holdout=[dict(t) for t in holdout],
            workdir=workdir,
            base_dir=(served or self.served_version(state)).path,
            settings=self.settings_for(state.extra_params),
            media=media or self.media_for(state),
            data_dir=self.data_dir(state.key),
            reason=reason,
        )

    # -- jobs ------------------------------------------------------------------------------

    def run_job(self, job: Job) -> dict[str, Any]:
        """Run one queued job (the job runner's handler): ``predict`` jobs pre-annotate the
        project in LS, every other kind goes to the training policy. A failure also becomes
        the project's last error."""
        try:
            if job.kind == "predict":
                return run_predict_job(self, job)
            return self.policy.run(job)
        except Exception as exc:
            self.note_error(job.project, job.kind, f"job {job.id}: {type(exc).__name__}: {exc}")
            raise

    def start_job_thread(self) -> None:
        """Run training jobs in a daemon thread of this process."""
        if self.job_runner is None:
            self.job_runner = JobRunner(self.queue, self.run_job)
        self.job_runner.start()

    def wake_jobs(self) -> None:
        """Tell this process's job thread (if any) that a job was queued."""
        if self.job_runner is not None:
            self.job_runner.wake()

    def training_status(self) -> dict[str, Any]:
        """How training jobs get run, for ``/health``: the runner and the live workers."""
        if not self.policy.trains:
            return {"trains": False}
        runner = self.settings.job_runner
        alive = self.live_workers()
        status: dict[str, Any] = {"trains": True, "runner": runner, "workers": alive}
        if self.delivery is not None:
            status["queue"] = f"rq:{self.delivery.rq.name}"
        if not alive:
            status["problem"] = "no training worker is running: jobs queue until one starts" + (
                " (start `prelabel worker`)" if runner == "external" else ""
            )
        return status

    def store_problem(self) -> str | None:
        """Why the store cannot take writes (read-only, full, a write just failed), or ``None``."""
        return unwritable(self.store.root) or self.write_failures.recent()

    def check_services(self) -> None:
        """Raise :class:`ServiceUnavailable` unless the state database answers (``/health``).

        Redis is checked by :meth:`training_status` (it counts RQ's workers).
        """
        if self.store.database.dialect != "sqlite":  # a file needs no network round trip
            self.store.database.execute("SELECT 1")

    def live_workers(self) -> int:
        """Workers able to run this backend's jobs now (RQ's count with Redis)."""
        if self.delivery is not None:
            return self.delivery.workers()
        if self.settings.job_runner == "thread":
            return int(self.job_runner is not None and self.job_runner.alive)
        return self.workers.alive()

    def record_acceptance(
        self, key: ProjectKey, task: Mapping[str, Any], annotation: Mapping[str, Any]
    ) -> None:
        """Score an annotation against the prediction shown for its task (never raises)."""
        try:
            self.acceptance.record_annotation(key, task, annotation)
        except Exception:
            # Metrics must never cost an annotation event.
            log.exception("Could not record acceptance for project %s.", key)


def build_runtime(
    backend: Backend | None = None,
    settings: CoreSettings | None = None,
    *,
    policy: PolicyFactory = GatedTraining,
    media: MediaResolver | None = None,
    adopt: bool = True,
    role: Role = "serve",
) -> Runtime:
    """Build the services for ``backend`` (not loaded: call ``runtime.backend.load()``).

    Args:
        backend: the backend; by default the one selected by ``PRELABEL_BACKEND`` (or the only
            one installed), configured from the environment.
        settings: core settings; by default from the environment.
        policy: builds the training policy; the gated champion/challenger loop by default.
        media: the media resolver; by default one from ``settings`` (tests pass their own).
        adopt: make ``settings.model_dir`` the backend's :attr:`~prelabel.Backend.home`
            (where it resolves weights) and give it the :attr:`~prelabel.Backend.threads` of
            ``role``; the kit's helpers, which run on scratch directories, leave the
            backend's own.
        role: what this process does: serve requests, or run one training job (see
            :mod:`prelabel.threads`).
    """
    settings = settings or load_settings(CoreSettings)
    backend = backend or make_backend(settings=settings)
    if adopt:
        backend.home = settings.model_dir
        backend.threads = threads_for(role, settings)
    require_writable(settings.model_dir)
    database = open_database(database_target(settings.database_url, settings.model_dir))
    artifacts = None
    if settings.artifacts_url:
        artifacts = ArtifactStore(
            settings.artifacts_url, settings.artifacts_options, settings.model_dir
        )
    store = ProjectStore(settings.model_dir, database=database, artifacts=artifacts)
    queue = JobQueue(database, stale_after=settings.job_stale_seconds)
    acceptance = AcceptanceTracker(database)
    workers = WorkerRegistry(database)
    delivery = None
    if settings.redis_url:
        from prelabel._engine.rqjobs import RqDelivery

        delivery = RqDelivery(settings.redis_url, backend.name, queue)
        queue.add_listener(delivery.on_enqueue)

    def scraped_workers() -> int:
        try:
            return delivery.workers() if delivery is not None else workers.alive()
        except ServiceUnavailable:
            return 0  # /health says why; a metrics scrape must not fail with Redis

    telemetry = Telemetry(
        backend.name,
        queue.counts,
        live_workers=None if settings.job_runner == "thread" else scraped_workers,
    )
    runner = PredictionRunner(
        backend,
        score_policy=settings.score_policy,
        control_fraction=settings.control_fraction,
        on_served=acceptance.record_served_later,
    )
    runtime = Runtime(
        backend=backend,
        settings=settings,
        store=store,
        queue=queue,
        acceptance=acceptance,
        telemetry=telemetry,
        media=media or MediaResolver(settings),
        runner=runner,
        workers=workers,
        delivery=delivery,
        errors=ErrorLog(database),
    )
    runtime.policy = policy(runtime)
    runtime.selector = SelectorSync(lambda state: runtime.ls_api())
    # Wired last: both read through the runtime (its policy decides what a project serves).
    runner.on_stats = runtime.observe_run
    telemetry.watch_versions(runtime.served_versions)
    return runtime
