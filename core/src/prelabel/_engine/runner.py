"""Runs ``Backend.predict`` for a request and enforces the protocol's invariants.

* exactly one entry per task, in order — a task whose prediction fails gets an empty result
  and a log line; the rest of the batch is unaffected (protocol §3.3); when every task
  raised, the request fails with the exception's message, which Label Studio shows;
* ``model_version`` is never null: the version ``/setup`` reports for the project, unless a
  backend deliberately labels a prediction with its own (several models per task, protocol E6);
* ``score`` follows the core policy (:mod:`prelabel.metrics.scoring`);
* control-group tasks get an empty prediction (never shown a model's suggestion).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prelabel.backend import Backend, Context, TaskPredictions
from prelabel.errors import PredictionFailed, PrelabelError
from prelabel.metrics.scoring import ScorePolicy, in_control_group, score_from_probabilities
from prelabel.project import ProjectKey
from prelabel.results import Prediction

__all__ = ["PredictionRunner", "RunStats", "ServedPrediction"]

log = logging.getLogger(__name__)

#: LS JSON for one task: a prediction object, or a list of them.
LSEntry = dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class ServedPrediction:
    """What the model predicted for a task, and whether the annotator was shown it."""

    task_id: Any
    model_version: str
    control: bool
    result: list[dict[str, Any]]


@dataclass
class RunStats:
    """What happened to the tasks of one call (feeds ``/metrics``)."""

    predicted: int = 0
    empty: int = 0
    failed: int = 0
    control: int = 0
    regions: int = 0
    failures: list[str] = field(default_factory=list)


def _every_task_failed(exc: Exception, n_tasks: int) -> PrelabelError:
    """The error ``/predict`` answers when the backend raised on every task of the request."""
    if isinstance(exc, PrelabelError):
        return exc  # already worded for Label Studio's UI, with its own status
    where = "the task" if n_tasks == 1 else f"all {n_tasks} tasks"
    return PredictionFailed(f"Prediction failed on {where}: {type(exc).__name__}: {exc}")


def _clamp(score: float | None) -> float | None:
    if score is None or not math.isfinite(score):
        return None
    return min(1.0, max(0.0, float(score)))


class PredictionRunner:
    """Call a backend and turn its output into LS's ``results`` list."""

    def __init__(
        self,
        backend: Backend,
        *,
        score_policy: ScorePolicy = "least_confidence",
        control_fraction: float = 0.0,
        on_stats: Callable[[RunStats], None] | None = None,
        on_served: Callable[[ProjectKey, list[ServedPrediction]], None] | None = None,
    ) -> None:
        self.backend = backend
        self.score_policy = score_policy
        self.control_fraction = control_fraction
        self.on_stats = on_stats
        self.on_served = on_served

    def run(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> list[LSEntry]:
        """Predict ``tasks``; always returns ``len(tasks)`` entries in task order."""
        stats = RunStats()
        interactive = bool(ctx.interaction) and self.backend.interactive
        if ctx.interaction and not self.backend.interactive:
            # LS sends clicks to every interactive-enabled backend; a non-interactive one
            # answers with its normal prediction, as the LS examples do.
            ctx = replace(ctx, interaction=())
        control = [
            not interactive
            and in_control_group(str(ctx.project), t.get("id"), self.control_fraction)
            for t in tasks
        ]
        try:
            outputs = self._predict_isolated(tasks, ctx, stats)
        except PrelabelError:
            if self.on_stats is not None:
                self.on_stats(stats)  # the failed tasks still count in /metrics
            raise
        entries: list[LSEntry] = []
        served: list[ServedPrediction] = []
        for task, output, is_control in zip(tasks, outputs, control, strict=True):
            entry = self._entry(
                output, ctx, RunStats() if is_control else stats, single=interactive
            )
            if not interactive:
                first = entry if isinstance(entry, dict) else entry[0]
                served.append(
                    ServedPrediction(
                        task.get("id"), first["model_version"], is_control, first["result"]
                    )
                )
            if is_control:
                # The model's answer is kept (to measure annotators without it) but not shown.
                stats.control += 1
                entry = Prediction(model_version=ctx.model_version).to_ls()
            entries.append(entry)
        if self.on_stats is not None:
            self.on_stats(stats)
        if self.on_served is not None and served:
            self.on_served(ctx.project, served)
        return entries

    def _predict_isolated(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context, stats: RunStats
    ) -> list[TaskPredictions | None]:
        """The batch in one call; if that fails or breaks the 1:1 rule, task by task.

        Raises:
            PrelabelError: the backend raised on every task (its own error if it raised a
                ``PrelabelError``, else ``PredictionFailed`` with its message), so that Label
                Studio shows why instead of storing empty predictions.
        """
        if not tasks:
            return []
        try:
            out = list(self.backend.predict(tasks, ctx))
            if len(out) == len(tasks):
                return list(out)
            log.error(
                "Backend %s returned %d predictions for %d tasks; retrying task by task.",
                self.backend.name,
                len(out),
                len(tasks),
            )
        except Exception as exc:
            if len(tasks) == 1:
                self._fail(tasks[0], stats)
                raise _every_task_failed(exc, 1) from exc
            log.exception(
                "Backend %s failed on a batch of %d tasks; retrying task by task.",
                self.backend.name,
                len(tasks),
            )
        results: list[TaskPredictions | None] = []
        raised: list[Exception] = []
        for task in tasks:
            try:
                one = list(self.backend.predict([task], ctx))
            except Exception as exc:
                self._fail(task, stats)
                raised.append(exc)
                results.append(None)
                continue
            if len(one) != 1:
                self._fail(task, stats, f"it returned {len(one)} predictions for 1 task")
            results.append(one[0] if len(one) == 1 else None)
        if len(raised) == len(tasks):
            raise _every_task_failed(raised[0], len(tasks)) from raised[0]
        return results

    def _fail(self, task: Mapping[str, Any], stats: RunStats, why: str | None = None) -> None:
        """Count a task without a prediction; ``why`` unless an exception is being handled."""
        message = "Backend %s failed on task %s%s."
        args = (self.backend.name, task.get("id"), f" ({why})" if why else "")
        if why:
            log.error(message, *args)
        else:
            log.exception(message, *args)
        stats.failed += 1
        stats.failures.append(str(task.get("id")))

    def _entry(
        self, output: TaskPredictions | None, ctx: Context, stats: RunStats, *, single: bool
    ) -> LSEntry:
        if output is None:
            return self._serialise(Prediction.empty(), ctx, stats)
        if isinstance(output, Prediction):
            return self._serialise(output, ctx, stats)
        predictions = [p for p in output if isinstance(p, Prediction)]
        if len(predictions) != len(output) or not predictions:
            log.error(
                "Backend %s returned %r for a task; expected Prediction or a list of them.",
                self.backend.name,
                type(output).__name__,
            )
            stats.failed += 1
            return self._serialise(Prediction.empty(), ctx, stats)
        if single or len(predictions) == 1:
            # LS uses only results[0] of an interactive call and needs it to be an object.
            return self._serialise(predictions[0], ctx, stats)
        return [self._serialise(p, ctx, stats) for p in predictions]

    def _serialise(self, prediction: Prediction, ctx: Context, stats: RunStats) -> dict[str, Any]:
        score = prediction.score if prediction.score is not None else self._score(prediction)
        try:
            # Stamped on the JSON, not the object: backends may cache and reuse Predictions.
            entry: dict[str, Any] = {
                "result": [region.to_ls() for region in prediction.result],
                "score": _clamp(score),
                "model_version": prediction.model_version or ctx.model_version,
            }
        except Exception:
            log.exception(
                "Backend %s produced a prediction that cannot be serialised.", self.backend.name
            )
            stats.failed += 1
            entry = Prediction(model_version=ctx.model_version).to_ls()
        if entry["result"]:
            stats.predicted += 1
            stats.regions += len(entry["result"])
        else:
            stats.empty += 1
        return entry

    def _score(self, prediction: Prediction) -> float | None:
        if prediction.probabilities is not None:
            try:
                return score_from_probabilities(prediction.probabilities, self.score_policy)
            except ValueError:
                log.warning("Ignoring invalid probabilities from backend %s.", self.backend.name)
        return prediction.region_score()
