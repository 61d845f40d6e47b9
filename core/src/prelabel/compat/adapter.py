"""``CompatBackend``: serves a ``LabelStudioMLBase`` subclass through prelabel's core.

* one model instance per project and process, kept in an LRU, recreated when its labeling
  config changes or a training job finished (in any process: a counter in the store);
* ``predict`` output (list of dicts, ``{"predictions": …}``, ``ModelResponse``, ``None``) becomes
  one core ``Prediction`` per task (a short list is padded with empty ones); region dicts pass
  through unchanged, problems are logged;
* training is delivered by :class:`prelabel.compat.training.CompatTraining`: each webhook body
  recorded for the project reaches the model's ``fit(event, data)`` exactly as the SDK would
  have passed it (:meth:`CompatBackend.train_events`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic_settings import SettingsConfigDict

from prelabel.backend import Backend, Context, TaskPredictions
from prelabel.compat._store import CompatStore
from prelabel.compat.base import Binding, LabelStudioMLBase, bound
from prelabel.compat.response import ModelResponse, PredictionValue
from prelabel.config import LabelConfig
from prelabel.project import ProjectKey
from prelabel.results import Prediction, Region
from prelabel.settings import BackendSettings
from prelabel.validation import region_problems

__all__ = ["CompatBackend"]

log = logging.getLogger(__name__)

#: Bumped after every training job; instances made before it are recreated.
GENERATION_KEY = "prelabel:fit_generation"
_REGION_KEYS = ("from_name", "to_name", "type", "value")


@dataclass(frozen=True)
class _RawRegion(Region):
    """A region dict from user code, serialised back exactly as it came."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_ls(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self.raw, default=str))  # deep, JSON-clean
        return copied


@dataclass
class _Entry:
    instance: LabelStudioMLBase
    generation: int
    label_config: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _score(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        log.warning("Ignoring a non-numeric score %r.", value)
        return None


class CompatBackend(Backend):
    """Adapts one ``LabelStudioMLBase`` subclass to the :class:`~prelabel.Backend` contract."""

    name = "compat"
    controls: ClassVar[frozenset[str]] = frozenset()
    interactive = True  # the model's predict gets `context` and decides what to do with it

    class Settings(BackendSettings):
        """Any ``extra_params`` are accepted: the model reads them via ``self.extra_params``."""

        model_config = SettingsConfigDict(extra="allow")

    def __init__(
        self, model_class: type[LabelStudioMLBase], store: CompatStore, *, max_projects: int = 32
    ) -> None:
        super().__init__(self.Settings())
        self.model_class = model_class
        self.store = store
        self.max_projects = max_projects
        self._instances: OrderedDict[str, _Entry] = OrderedDict()
        self._creating: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The newest version any project's model set (``/versions`` carries no project)."""
        newest = self.store.newest("model_version")
        return str(newest) if newest else self.model_class.INITIAL_MODEL_VERSION

    def check_config(self, config: LabelConfig) -> None:
        """Accept every config: the model itself decides what it can fill."""

    # -- instances ------------------------------------------------------------------------

    def _fresh(self, entry: _Entry | None, generation: int, label_config: str | None) -> bool:
        return (
            entry is not None
            and entry.generation == generation
            and (label_config is None or entry.label_config == label_config)
        )

    def _create(self, key: str, label_config: str | None) -> LabelStudioMLBase:
        with bound(Binding(self.store, key)):
            return self.model_class(project_id=key.split(".", 1)[0], label_config=label_config)

    def entry(self, key: str, label_config: str | None) -> _Entry:
        """The project's instance, creating it (``setup()`` runs) when missing or stale."""
        generation = int(self.store.get(key, GENERATION_KEY) or 0)
        with self._lock:
            entry = self._instances.get(key)
            if self._fresh(entry, generation, label_config):
                self._instances.move_to_end(key)
                return entry  # type: ignore[return-value]
            creating = self._creating.setdefault(key, threading.Lock())
        # One creation per project at a time; other projects are not held up by a slow setup().
        with creating:
            with self._lock:
                entry = self._instances.get(key)
                if self._fresh(entry, generation, label_config):
                    return entry  # type: ignore[return-value]
            config = label_config or (entry.label_config if entry else None)
            config = config or self.store.get(key, "label_config")
            fresh = _Entry(self._create(key, config), generation, config)
            with self._lock:
                self._instances[key] = fresh
                self._instances.move_to_end(key)
                while len(self._instances) > self.max_projects:
                    self._instances.popitem(last=False)
            return fresh

    def current_version(
        self, project: ProjectKey, label_config: str | None, extra_params: Mapping[str, Any]
    ) -> str:
        """The version ``/setup`` reports and predictions carry: the model's ``model_version``.

        Creates the project's instance (its ``setup()`` runs) once a config is known, and hands
        it the project's ``extra_params``.
        """
        key = str(project)
        if label_config:
            instance = self.entry(key, label_config).instance
            if dict(extra_params) != instance.extra_params:
                instance.set_extra_params(dict(extra_params))
        version = self.store.get(key, "model_version")
        return str(version) if version else self.model_class.INITIAL_MODEL_VERSION

    # -- predict --------------------------------------------------------------------------

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        """Call the model's ``predict`` and turn what it returns into one entry per task."""
        entry = self.entry(str(ctx.project), ctx.label_config.xml)
        model = entry.instance
        if ctx.extra_params and dict(ctx.extra_params) != model.extra_params:
            model.set_extra_params(dict(ctx.extra_params))
        context = {"result": [dict(i) for i in ctx.interaction]} if ctx.interaction else None
        # The SDK made an instance per request, so model code never saw concurrent calls.
        with entry.lock:
            model._binding = replace(model._binding, media=ctx.media)
            raw = model.predict([dict(t) for t in tasks], context=context, **dict(ctx.params))
        version = model.model_version or ctx.model_version
        return self.normalise(raw, len(tasks), version, ctx.label_config)

    def normalise(
        self, raw: Any, n_tasks: int, version: str, config: LabelConfig
    ) -> list[TaskPredictions]:
        """What the SDK's ``/predict`` accepted, as core predictions (one entry per task).

        Fewer predictions than tasks answer the first tasks; the rest get empty ones (logged).

        Raises:
            TypeError: an unsupported return type.
            ValueError: more predictions than tasks (the server then asks again task by task).
        """
        model = self.model_class.__name__
        if isinstance(raw, ModelResponse):
            if raw.has_model_version():
                raw.update_predictions_version()
            else:
                raw.set_version(version)
            items: list[Any] = list(raw.predictions)
        elif raw is None:
            items = []
        elif isinstance(raw, Mapping) and "predictions" in raw:
            items = list(raw["predictions"])
        elif isinstance(raw, Mapping) and "result" in raw:
            items = [raw]
        elif isinstance(raw, list | tuple):
            items = list(raw)
        else:
            raise TypeError(
                f"{model}.predict returned {type(raw).__name__}; return a list with one prediction"
                " dict per task, or ModelResponse(predictions=[...])."
            )
        if len(items) > n_tasks:
            raise ValueError(
                f"{model}.predict returned {len(items)} predictions for {n_tasks} tasks; return"
                " one per task, in order (a list of predictions for several on one task)."
            )
        if items and len(items) < n_tasks:
            # The SDK's examples skip tasks they cannot read; LS would then drop the batch.
            log.warning(
                "%s.predict returned %d predictions for %d tasks: they answer the first %d"
                " tasks in order, the other %d get empty predictions. Return one per task.",
                model,
                len(items),
                n_tasks,
                len(items),
                n_tasks - len(items),
            )
        answered = [self._task_predictions(item, version, config) for item in items]
        return answered + [Prediction.empty() for _ in range(n_tasks - len(items))]

    def _task_predictions(self, item: Any, version: str, config: LabelConfig) -> TaskPredictions:
        if isinstance(item, list | tuple):
            return [self._prediction(p, version, config) for p in item]
        return self._prediction(item, version, config)

    def _prediction(self, item: Any, version: str, config: LabelConfig) -> Prediction:
        if isinstance(item, PredictionValue):
            # Not model_dump(): that would turn prelabel Regions into dicts of their fields.
            item = {"result": item.result, "score": item.score, "model_version": item.model_version}
        if not isinstance(item, Mapping):
            raise TypeError(f"A prediction must be a dict or PredictionValue, got {item!r:.80}")
        regions = [r for r in (self._region(i, config) for i in item.get("result") or []) if r]
        own = item.get("model_version")
        return Prediction(
            result=regions, score=_score(item.get("score")), model_version=str(own or version)
        )

    def _region(self, item: Any, config: LabelConfig) -> Region | None:
        if isinstance(item, Region):
            return item
        if not isinstance(item, Mapping) or (
            item.get("type") != "relation" and any(k not in item for k in _REGION_KEYS)
        ):
            log.error(
                "%s: dropped a region without %s: %.200r",
                self.model_class.__name__,
                "/".join(_REGION_KEYS),
                item,
            )
            return None
        problems = region_problems(item, config)
        if problems:
            # Kept as the SDK kept it; Label Studio may still refuse or mis-draw it.
            log.warning(
                "%s: region %s: %s", self.model_class.__name__, item.get("id"), "; ".join(problems)
            )
        value = item.get("value")
        return _RawRegion(
            from_name=str(item.get("from_name", "")),
            to_name=str(item.get("to_name", "")),
            type=str(item.get("type")),
            value=value if isinstance(value, Mapping) else {},
            id=item.get("id"),
            score=_score(item.get("score")),
            raw=dict(item),
        )

    # -- training -------------------------------------------------------------------------

    def train_events(self, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Call ``fit(event, data)`` once per webhook body, in arrival order, on a fresh instance.

        Raises:
            RuntimeError: ``fit`` raised for some events (the others still ran); the message
                names them.
        """
        if not events:
            return {"trained": False, "reason": "no webhook events waiting for this project"}
        project = events[-1].get("project")
        config = project.get("label_config") if isinstance(project, Mapping) else None
        model = self._create(key, config if isinstance(config, str) and config else None)
        results: list[Any] = []
        failures: list[str] = []
        model._phase = "fit"
        try:
            for body in events:
                event = str(body.get("action"))
                data = {k: v for k, v in body.items() if k != "action"}
                try:
                    results.append(_jsonable(model.fit(event, data)))
                except Exception as exc:
                    log.exception(
                        "Project %s: %s.fit(%s) failed.", key, type(model).__name__, event
                    )
                    failures.append(f"{event}: {type(exc).__name__}: {exc}")
        finally:
            model._phase = ""
            # Serving instances (in every process) pick up what fit stored on their next call.
            self.store.set(key, GENERATION_KEY, int(self.store.get(key, GENERATION_KEY) or 0) + 1)
        if failures:
            raise RuntimeError(
                f"fit failed on {len(failures)} of {len(events)} events: {'; '.join(failures)}"
            )
        return {
            "trained": True,
            "events": len(events),
            "model_version": model.model_version,
            "results": results,
        }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
