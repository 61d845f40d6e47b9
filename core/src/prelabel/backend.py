"""The plugin contract: `Backend`, and what the server hands it (`Context`, `TrainJob`)."""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from prelabel.annotations import judged_result, unannotated
from prelabel.config import LabelCoverage
from prelabel.database import Database
from prelabel.errors import UnsupportedConfig
from prelabel.metrics.agreement import agreement
from prelabel.project import ProjectKey
from prelabel.results import Prediction
from prelabel.settings import BackendSettings, CoreSettings, load_settings
from prelabel.threads import threads_for

if TYPE_CHECKING:
    from prelabel.config import LabelConfig
    from prelabel.media import MediaResolver
    from prelabel.scenario import Scenario

__all__ = [
    "Backend",
    "BulkHints",
    "Context",
    "Evaluation",
    "TaskPredictions",
    "TrainJob",
    "TrainResult",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: Receives ``(reason, name, count)`` for what a backend found but could not show LS.
DropCounter = Callable[[str, str, int], None]


def _count_nothing(reason: str, name: str, count: int) -> None:
    """Contexts built outside a server (tests, scripts) count nowhere."""


#: What ``predict`` returns for one task: one prediction, or several (LS stores each).
TaskPredictions = Prediction | Sequence[Prediction]


@functools.cache
def _dist_version(module: str) -> str:
    # Scanning installed distributions takes ~0.1 s: once per process, never per request.
    try:
        dist = metadata.packages_distributions().get(module, [module])[0]
        return metadata.version(dist)
    except (metadata.PackageNotFoundError, IndexError):
        return "0"


@dataclass
class Context:
    """Everything a backend needs to answer one ``/predict`` call.

    Attributes:
        project: the LS project (id and generation).
        label_config: the parsed labeling config of the request.
        model_version: the version being served for this project; the server stamps it.
        model_dir: artifacts of that version (written by ``fit``), ``None`` for the base model.
        settings: the backend's settings with the project's ``extra_params`` applied.
        extra_params: the raw ``extra_params`` the project set in LS (a dict).
        media: fetches task media (LS uploads, local files, cloud URIs, http(s)).
        data_dir: the project's own directory for backend data (caches, indexes); it exists.
        interaction: ``params.context.result`` of an interactive call (clicks, boxes), else empty.
        params: the rest of the request's ``params`` (``login``/``password`` for task URLs).
        shared_database: the database every replica and worker shares (PostgreSQL, with
            ``PRELABEL_DATABASE_URL``), for backend state they must all see (budgets, caches);
            ``None`` on the embedded default, where ``data_dir`` is just as shared.
        on_dropped: where :meth:`count_dropped` reports to (the server's ``/metrics``).
    """

    project: ProjectKey
    label_config: LabelConfig
    model_version: str
    model_dir: Path | None
    settings: BackendSettings
    extra_params: Mapping[str, Any]
    media: MediaResolver
    data_dir: Path
    interaction: Sequence[Mapping[str, Any]] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    shared_database: Database | None = None
    on_dropped: DropCounter = _count_nothing

    def count_dropped(self, reason: str, name: str, count: int = 1) -> None:
        """Count what the model found but the result leaves out, for ``/metrics``.

        Shown as ``prelabel_dropped_total{backend, reason, name}``; e.g. a model's tag or class
        that maps to no label in the config: ``count_dropped("unmapped", "MISC", 3)``. Keep
        ``reason`` to a few fixed words; ``name`` comes from the model's own vocabulary.
        """
        if count > 0:
            self.on_dropped(reason, name, count)


@dataclass
class TrainJob:
    """One training run, prepared by the server's job runner.

    Attributes:
        project: the LS project.
        label_config: the project's labeling config.
        tasks: annotated tasks to train on, in LS export format; each has ``data`` and a
            non-empty ``annotations`` list (cancelled/skipped annotations removed). Judge each
            by :func:`prelabel.annotations.judged_result`.
        holdout: the held-out annotated tasks the promotion gate scores the new version on
            (empty while the project is too small for a gate). Not for training; a backend that
            wants a validation set (early stopping, metrics) uses these instead of splitting
            ``tasks`` again.
        workdir: an empty directory; write the new version's artifacts here. It is promoted
            atomically if the new version wins, and discarded otherwise.
        base_dir: artifacts of the version being served (to fine-tune from), ``None`` if untrained.
        settings: backend settings with the project's ``extra_params`` applied.
        media: fetches task media.
        data_dir: the project's own directory for backend data (as :attr:`Context.data_dir`).
        reason: what triggered the run (``"ANNOTATION_CREATED"``, ``"START_TRAINING"``…).
    """

    project: ProjectKey
    label_config: LabelConfig
    tasks: list[dict[str, Any]]
    holdout: list[dict[str, Any]]
    workdir: Path
    base_dir: Path | None
    settings: BackendSettings
    media: MediaResolver
    data_dir: Path
    reason: str = ""


@dataclass
class TrainResult:
    """What ``fit`` reports.

    Attributes:
        metrics: numbers kept with the version (shown by ``/projects/<p>/versions``).
        details: anything else worth showing in the job's result (JSON-serialisable).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BulkHints:
    """How bulk pre-annotation (``prelabel predict``, re-prediction jobs) calls ``predict``.

    Attributes:
        batch_size: tasks per ``predict`` call.
        concurrency: calls in flight at once: more than 1 for I/O-bound backends (a remote
            API), 1 for backends that already use every core.
    """

    batch_size: int = 16
    concurrency: int = 1


@dataclass(frozen=True)
class Evaluation:
    """A version's score on held-out annotated tasks, and the name of what it measures.

    Attributes:
        metric: e.g. ``"agreement"`` or ``"map50_95"``; names the version's metrics
            ``holdout_<metric>`` and ``champion_<metric>``.
        value: higher is better; the gate promotes a challenger whose value is not lower.
    """

    metric: str
    value: float


class Backend(ABC):
    """Base class of every prelabel backend.

    Subclasses set the class attributes, keep ``__init__`` cheap (no heavy imports, no I/O),
    do heavy work once per process in :meth:`load`, and implement :meth:`predict`.
    Register the class under the entry-point group ``prelabel.backends`` with the same name
    as :attr:`name`.
    """

    #: Entry-point name; lowercase ``[a-z][a-z0-9_]*``; gives the ``PRELABEL_<NAME>_`` prefix.
    name: ClassVar[str]
    #: Control tags this backend fills, as written in LS configs (``"Choices"``, ``"Labels"``…).
    controls: ClassVar[frozenset[str]]
    #: Whether ``params.context`` (clicks, boxes drawn by the annotator) is passed to ``predict``.
    interactive: ClassVar[bool] = False
    #: Modules that must not be imported until :meth:`load` (checked by the conformance kit).
    heavy_modules: ClassVar[tuple[str, ...]] = ()
    #: How bulk pre-annotation batches this backend's work.
    bulk: ClassVar[BulkHints] = BulkHints()

    class Settings(BackendSettings):
        """The backend's options; override with a subclass of :class:`BackendSettings`."""

    def __init__(
        self, settings: BackendSettings | None = None, *, home: Path | None = None
    ) -> None:
        self.settings = settings if settings is not None else self.load_settings()
        self._home = home
        self._threads: int | None = None

    @property
    def home(self) -> Path:
        """The server's model directory (``PRELABEL_MODEL_DIR``), set by the runtime.

        Weights a backend names by relative path (``model_path="custom/best.pt"``) resolve
        inside it, never outside.
        """
        if self._home is None:
            self._home = load_settings(CoreSettings).model_dir
        return self._home

    @home.setter
    def home(self, path: Path) -> None:
        self._home = path

    @property
    def threads(self) -> int:
        """CPU threads this process's model may use; set by the runtime (see :mod:`prelabel.threads`).

        A serving worker's share of the cores, or a training job's. A torch backend applies
        it in :meth:`load` with ``prelabel.threads.use_torch_threads(self.threads)``. Outside
        a runtime: the serving share from the environment.
        """
        if self._threads is None:
            self._threads = threads_for("serve")
        return self._threads

    @threads.setter
    def threads(self, count: int) -> None:
        self._threads = count

    @classmethod
    def env_prefix(cls) -> str:
        """``PRELABEL_<NAME>_``."""
        return f"PRELABEL_{cls.name.upper()}_"

    @classmethod
    def load_settings(cls, **overrides: Any) -> BackendSettings:
        """Build :attr:`Settings` from the environment (unknown keys are rejected)."""
        return load_settings(cls.Settings, env_prefix=cls.env_prefix(), **overrides)

    @property
    def version(self) -> str:
        """The base ``model_version`` (before any training): ``<name>-<dist version>``."""
        return f"{self.name}-{_dist_version(type(self).__module__.split('.')[0])}"

    @property
    def trainable(self) -> bool:
        """Whether the subclass implements :meth:`fit`."""
        return type(self).fit is not Backend.fit

    def load(self) -> None:  # noqa: B027  (optional hook: a no-op by default)
        """Import heavy modules and load weights; called once per process, before any request.

        Raise :class:`prelabel.errors.BackendLoadError` naming what to install or download.
        """

    def check_config(self, config: LabelConfig) -> None:
        """Raise :class:`UnsupportedConfig` unless ``config`` has something this backend fills.

        Called at ``/setup`` (so LS refuses to connect with a clear reason) and before
        ``predict``. The default needs one control whose tag is in :attr:`controls`.
        """
        if not config.controls_of(*self.controls):
            found = ", ".join(sorted({c.tag for c in config.controls.values()})) or "none"
            raise UnsupportedConfig(
                f"The {self.name} backend fills {', '.join(sorted(self.controls))} controls, "
                f"and this labeling config has none (its controls: {found})."
            )

    def label_coverage(self, config: LabelConfig) -> Sequence[LabelCoverage]:
        """Which labels of ``config`` this backend can predict, per control it fills.

        Shown by ``prelabel doctor`` and logged at ``/setup``, so keep it as cheap as
        :meth:`check_config` (called after it). Override it to say where labels come from:
        a model's fixed classes (``LabelCoverage.from_label_map``), labels learned from
        annotations or given in a prompt (``LabelCoverage.of(control, "learned")``). The
        default names the controls without knowing their labels' fate.
        """
        return [LabelCoverage.of(c, "unknown") for c in config.controls_of(*self.controls)]

    def check_settings(self, settings: BackendSettings) -> None:  # noqa: B027  (optional hook)
        """Raise :class:`~prelabel.errors.ConfigError` if ``settings`` leave nothing to predict with.

        For what a project's settings cannot do without (an API key, a server URL), so that
        Label Studio refuses to connect with the reason instead of showing a connected model
        that answers empty predictions. Called at ``/setup`` and ``/predict`` with the
        project's ``extra_params`` applied, and at ``prelabel serve``'s start with the
        environment's settings (a warning there: projects may bring what is missing). Keep it
        cheap: no model loading, no network (``/setup`` must answer within 3 s).
        """

    def prefetch(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> None:  # noqa: B027
        """Get ready for ``tasks``, which annotators are likely to open soon.

        The server calls it on a ``TASKS_CREATED`` webhook (an import, a storage sync) with
        the new tasks and a context for their project (its stored labeling config, already
        accepted by :meth:`check_config`). It runs on the webhook's request, which Label
        Studio gives 1 s: queue background work (fetch media, compute embeddings) and return.
        The default does nothing.
        """

    @abstractmethod
    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        """Predict for ``tasks`` (LS task dicts); return one entry per task, in order.

        A task with nothing to predict gets ``Prediction.empty()``. Raising fails the whole
        call; the server then retries task by task, so one bad task costs only itself. When
        every task raises, ``/predict`` fails with the exception's message, which LS shows.
        """

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        """Labeling configs and tasks for ``prelabel check`` (see :mod:`prelabel.testing`)."""
        return ()

    def evaluate(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> Evaluation:
        """Score the version in ``ctx.model_dir`` on annotated ``tasks`` (higher is better).

        The promotion gate calls it for the challenger and the champion on the same held-out
        tasks, in the job runner, and records ``holdout_<metric>`` and ``champion_<metric>``
        with the version. The default is the mean :func:`prelabel.metrics.agreement.agreement` of
        :meth:`predict` (run on :func:`unannotated` copies of the tasks) with the annotation each task is
        judged by (:func:`prelabel.annotations.judged_result`); override it with the metric users judge the model by.
        """
        total = 0.0
        for task, output in zip(tasks, self.predict(unannotated(tasks), ctx), strict=False):
            first = (
                output if isinstance(output, Prediction) else next(iter(output), Prediction.empty())
            )
            total += agreement([r.to_ls() for r in first.result], judged_result(task))
        return Evaluation("agreement", total / len(tasks) if tasks else 0.0)

    def fit(self, job: TrainJob) -> TrainResult | None:
        """Train a new version into ``job.workdir``; return ``None`` when there is nothing to train.

        Runs in the background job runner, never on a request path. The default does not train.
        """
        return None
