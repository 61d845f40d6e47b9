"""Runs ``Backend.predict`` for a request and enforces the protocol's invariants.

* exactly one entry per task, in order — a task whose prediction fails gets an empty result
  and a log line; the rest of the batch is unaffected (protocol §3.3); when every task
  raised, the request fails with the exception's message, which Label Studio shows;
* ``model_version`` is never null: the version ``/setup`` reports for the project, unless a
  backend deliberately labels a prediction with its own (several models per task, protocol E6);
* ``score`` follows the core policy (:mod:`prelabel.metrics.scoring`);
* control-group tasks get an empty prediction (never shown a model's suggestion).

Each task counts once in :class:`RunStats`: predicted, empty, failed or control. A task is
*failed* when the backend raised on it, returned something unusable, or left it empty because
its media could not be fetched (LS unreachable, a bad token): an empty prediction there is an
error to surface, not an answer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    score: float | None = None


@dataclass
class RunStats:
    """What happened to the tasks of one call (feeds ``/metrics`` and the project's last error).

    Attributes:
        project: the project of the call.
        predicted: tasks given at least one region.
        empty: tasks the model had nothing for.
        failed: tasks that failed (see the module docstring).
        control: tasks of the control group.
        regions: regions returned.
        last_error: why the last failed task failed (``"task 7: …"``).
    """

    project: ProjectKey
    predicted: int = 0
    empty: int = 0
    failed: int = 0
    control: int = 0
    regions: int = 0
    last_error: str | None = None

    def count(self, task_id: Any, regions: int, error: str | None) -> None:
        """Count one task (not of the control group): failed if ``error``, else by its regions."""
        if error is not None:
            self.failed += 1
            self.last_error = f"task {task_id}: {error}"
        elif regions:
            self.predicted += 1
            self.regions += regions
        else:
            self.empty += 1


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
        stats = RunStats(ctx.project)
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
        errors: dict[int, str] = {}
        try:
            outputs = self._predict_isolated(tasks, ctx, errors)
        except PrelabelError:
            # Every task raised: the request fails with the reason, and each task counts.
            for i, task in enumerate(tasks):
                stats.count(task.get("id"), 0, errors.get(i, "the backend raised"))
            if self.on_stats is not None:
                self.on_stats(stats)
            raise
        media_failures = ctx.media.fetch_failures()
        entries: list[LSEntry] = []
        served: list[ServedPrediction] = []
        for i, (task, output, is_control) in enumerate(zip(tasks, outputs, control, strict=True)):
            entry, broken = self._entry(output, ctx, single=interactive)
            error = errors.get(i) or broken
            predictions = entry if isinstance(entry, list) else [entry]
            if not interactive:
                first = predictions[0]
                served.append(
                    ServedPrediction(
                        task.get("id"),
                        first["model_version"],
                        is_control,
                        first["result"],
                        first["score"],
                    )
                )
            if is_control:
                # The model's answer is kept (to measure annotators without it) but not shown.
                stats.control += 1
                entry = Prediction(model_version=ctx.model_version).to_ls()
            else:
                regions = sum(len(p["result"]) for p in predictions)
                if error is None and not regions:
                    error = media_failures.get(task.get("id"))
                stats.count(task.get("id"), regions, error)
            entries.append(entry)
        if self.on_stats is not None:
            self.on_stats(stats)
        if self.on_served is not None and served:
            self.on_served(ctx.project, served)
        return entries

    def _predict_isolated(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context, errors: dict[int, str]
    ) -> list[TaskPredictions | None]:
        """The batch in one call; if that fails or breaks the 1:1 rule, task by task.

        A task whose call raised, or returned the wrong number of predictions, gets ``None``,
        and ``errors[its index]`` says why.

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
                errors[0] = self._fail(tasks[0], exc)
                raise _every_task_failed(exc, 1) from exc
            log.exception(
                "Backend %s failed on a batch of %d tasks; retrying task by task.",
                self.backend.name,
                len(tasks),
            )
        results: list[TaskPredictions | None] = []
        raised: list[Exception] = []
        for i, task in enumerate(tasks):
            try:
                one = list(self.backend.predict([task], ctx))
            except Exception as exc:
                errors[i] = self._fail(task, exc)
                raised.append(exc)
                results.append(None)
                continue
            if len(one) != 1:
                errors[i] = self._fail(task, None, f"it returned {len(one)} predictions for 1 task")
            results.append(one[0] if len(one) == 1 else None)
        if len(raised) == len(tasks):
            raise _every_task_failed(raised[0], len(tasks)) from raised[0]
        return results

    def _fail(self, task: Mapping[str, Any], exc: Exception | None, why: str = "") -> str:
        """Log why ``task`` gets no prediction (``exc``, or ``why``); that reason as text."""
        if exc is not None:
            log.exception(
                "Backend %s failed on task %s; it gets an empty prediction.",
                self.backend.name,
                task.get("id"),
            )
            return f"{type(exc).__name__}: {exc}"
        log.error("Backend %s failed on task %s (%s).", self.backend.name, task.get("id"), why)
        return why

    def _entry(
        self, output: TaskPredictions | None, ctx: Context, *, single: bool
    ) -> tuple[LSEntry, str | None]:
        """The task's LS entry, and why the backend's output was unusable (``None``: it was)."""
        if output is None:
            return self._serialise(Prediction.empty(), ctx)
        if isinstance(output, Prediction):
            return self._serialise(output, ctx)
        predictions = [p for p in output if isinstance(p, Prediction)]
        if len(predictions) != len(output) or not predictions:
            log.error(
                "Backend %s returned %r for a task; expected Prediction or a list of them.",
                self.backend.name,
                type(output).__name__,
            )
            entry, _ = self._serialise(Prediction.empty(), ctx)
            return entry, f"the backend returned {type(output).__name__}, not a Prediction"
        if single or len(predictions) == 1:
            # LS uses only results[0] of an interactive call and needs it to be an object.
            return self._serialise(predictions[0], ctx)
        serialised = [self._serialise(p, ctx) for p in predictions]
        broken = next((why for _, why in serialised if why is not None), None)
        return [entry for entry, _ in serialised], broken

    def _serialise(self, prediction: Prediction, ctx: Context) -> tuple[dict[str, Any], str | None]:
        score = prediction.score if prediction.score is not None else self._score(prediction)
        try:
            # Stamped on the JSON, not the object: backends may cache and reuse Predictions.
            entry: dict[str, Any] = {
                "result": [region.to_ls() for region in prediction.result],
                "score": _clamp(score),
                "model_version": prediction.model_version or ctx.model_version,
            }
        except Exception as exc:
            log.exception(
                "Backend %s produced a prediction that cannot be serialised.", self.backend.name
            )
            why = f"a prediction that cannot be serialised ({type(exc).__name__}: {exc})"
            return Prediction(model_version=ctx.model_version).to_ls(), why
        return entry, None

    def _score(self, prediction: Prediction) -> float | None:
        if prediction.probabilities is not None:
            try:
                return score_from_probabilities(prediction.probabilities, self.score_policy)
            except ValueError:
                log.warning("Ignoring invalid probabilities from backend %s.", self.backend.name)
        return prediction.region_score()
