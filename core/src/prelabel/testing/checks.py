"""The conformance checks, as plain functions.

Each check takes a :class:`Target` and raises :class:`CheckFailed` with a message saying what
broke; its docstring's "Troubleshooting" paragraph says how to fix it. The same functions run
under pytest (:class:`prelabel.testing.BackendConformance`) and from ``prelabel check NAME``.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from prelabel.backend import Evaluation, TaskPredictions
from prelabel.config import LabelConfig
from prelabel.errors import ConfigError, UnsupportedConfig
from prelabel.registry import load_backend
from prelabel.results import Prediction
from prelabel.scenario import Scenario
from prelabel.settings import check_environment
from prelabel.testing._context import make_train_job
from prelabel.testing._target import (
    CheckFailed,
    CheckSkipped,
    Target,
    require,
    scenarios_of,
)
from prelabel.testing.replay import check_http_replay
from prelabel.validation import region_problems

__all__ = ["CHECKS"]


def _predictions(output: TaskPredictions) -> list[Prediction]:
    if isinstance(output, Prediction):
        return [output]
    items = list(output)
    require(
        bool(items) and all(isinstance(p, Prediction) for p in items),
        f"a task's output must be a Prediction or a non-empty list of them, got {output!r}",
    )
    return items


def check_entry_point(target: Target) -> None:
    """The backend is registered under ``prelabel.backends`` and passes load-time validation.

    Troubleshooting: declare ``[project.entry-points."prelabel.backends"] NAME = "pkg:Class"``
    in the plugin's pyproject.toml, reinstall it, and make ``Class.name`` equal ``NAME``.
    """
    if target.entry_point is None:
        raise CheckSkipped("the backend was given as a class, not an entry-point name")
    cls = load_backend(target.entry_point)
    require(
        cls is target.backend_cls,
        f"entry point {target.entry_point!r} loads {cls}, not {target.backend_cls}",
    )


def check_lazy_imports(target: Target) -> None:
    """Importing the plugin and constructing the backend imports none of ``heavy_modules``.

    Troubleshooting: move ``import torch`` (and the like) from module level into ``load()``
    or the methods that use them; keep ``__init__`` free of I/O.
    """
    cls = target.backend_cls
    if not cls.heavy_modules:
        raise CheckSkipped("the backend declares no heavy_modules")
    code = (
        "import importlib, json, sys\n"
        f"mod = importlib.import_module({cls.__module__!r})\n"
        f"getattr(mod, {cls.__qualname__!r})()\n"
        f"print(json.dumps([m for m in {list(cls.heavy_modules)!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    require(
        proc.returncode == 0,
        f"importing and constructing the backend failed:\n{proc.stderr[-2000:]}",
    )
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    require(not loaded, f"importing {cls.__module__} or calling {cls.__name__}() imported {loaded}")


def check_settings(target: Target) -> None:
    """``Settings`` builds from the environment prefix and rejects unknown keys.

    Troubleshooting: subclass ``prelabel.BackendSettings`` for ``Settings`` (it forbids unknown
    keys) and give every field a default.
    """
    cls = target.backend_cls
    cls.load_settings()
    bogus = f"{cls.env_prefix()}SURELY_NOT_A_SETTING"
    try:
        check_environment({bogus: "1"}, {cls.env_prefix(): cls.Settings})
    except ConfigError as exc:
        require(bogus in str(exc), f"the error for an unknown key does not name it: {exc}")
    else:
        raise CheckFailed(f"an unknown variable {bogus} was accepted")
    try:
        cls.Settings.model_validate({"surely_not_a_setting": 1})
    except ValueError:
        return
    raise CheckFailed(
        "Settings accepted an unknown key (use extra='forbid', as BackendSettings does)"
    )


def check_load_idempotent(target: Target) -> None:
    """``load()`` can be called twice.

    Troubleshooting: guard expensive work in ``load()`` with an "already loaded" test.
    """
    backend = target.backend()
    backend.load()


def check_predict_empty(target: Target) -> None:
    """``predict([])`` returns an empty list.

    Troubleshooting: don't index ``tasks[0]``; map over the tasks you are given.
    """
    out = target.backend().predict([], target.context(scenarios_of(target)[0]))
    require(list(out) == [], f"predict([]) returned {out!r}")


def check_one_per_task(target: Target) -> None:
    """``predict`` returns exactly one entry per task, in order, for every scenario.

    Troubleshooting: return ``Prediction.empty()`` for tasks with nothing to predict; never
    skip a task. LS drops the whole batch when the counts differ.
    """
    for scenario in scenarios_of(target):
        out = list(target.backend().predict(scenario.tasks, target.context(scenario)))
        require(
            len(out) == len(scenario.tasks),
            f"{len(out)} predictions for {len(scenario.tasks)} tasks",
        )
        for output in out:
            _predictions(output)


def _check_regions(scenario: Scenario, outputs: Sequence[TaskPredictions], what: str) -> None:
    config = LabelConfig.parse(scenario.label_config)
    for output in outputs:
        for prediction in _predictions(output):
            if prediction.score is not None:
                require(
                    0.0 <= prediction.score <= 1.0,
                    f"{what}: task score {prediction.score} outside [0, 1]",
                )
            for region in prediction.result:
                problems = region_problems(region.to_ls(), config)
                require(
                    not problems,
                    f"{what}: region {region.to_ls()} is invalid: {'; '.join(problems)}",
                )


def check_regions_valid(target: Target) -> None:
    """Every region fits the labeling config: names, type, labels, coordinate ranges, scores.

    Troubleshooting: build regions with ``prelabel.results`` builders, map model classes with
    ``LabelMap``, and convert pixels with the ``*_from_pixels``/``from_xyxy`` helpers.
    """
    for scenario in scenarios_of(target):
        _check_regions(
            scenario, target.backend().predict(scenario.tasks, target.context(scenario)), "predict"
        )


def check_unsupported_config(target: Target) -> None:
    """A config without any of the backend's controls is refused with ``UnsupportedConfig``.

    Troubleshooting: let ``Backend.check_config`` (or your override) raise
    ``prelabel.UnsupportedConfig`` with a message naming what the backend needs.
    """
    candidates = {
        "Rating": '<View><Text name="t" value="$t"/><Rating name="r" toName="t"/></View>',
        "Number": '<View><Text name="t" value="$t"/><Number name="n" toName="t"/></View>',
        "Choices": '<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="A"/></Choices></View>',
    }
    backend = target.backend()
    for tag, xml in candidates.items():
        if tag not in backend.controls:
            try:
                backend.check_config(LabelConfig.parse(xml))
            except UnsupportedConfig as exc:
                require(bool(str(exc).strip()), "UnsupportedConfig needs a message for the LS user")
                return
            raise CheckFailed(f"check_config accepted a config with only a <{tag}> control")
    raise CheckSkipped("the backend fills every candidate control")


def templates() -> dict[str, str]:
    """The 69 labeling configs Label Studio 1.23.2 ships as templates, by file name."""
    root = resources.files("prelabel.testing") / "fixtures" / "ls-templates"
    return {
        p.name: p.read_text(encoding="utf-8") for p in root.iterdir() if p.name.endswith(".xml")
    }


def check_templates(target: Target) -> None:
    """Every LS template is either accepted or refused with ``UnsupportedConfig`` and a reason.

    Troubleshooting: ``check_config`` must not crash on configs it does not understand
    (missing objects, dynamic labels, nested views); raise ``UnsupportedConfig`` naming what
    the backend needs instead, so LS shows it when the user connects the model.
    """
    backend = target.backend()
    accepted = 0
    for name, xml in sorted(templates().items()):
        try:
            backend.check_config(LabelConfig.parse(xml))
            accepted += 1
        except UnsupportedConfig as exc:
            require(bool(str(exc).strip()), f"{name}: UnsupportedConfig without a message")
        except Exception as exc:
            raise CheckFailed(f"{name}: check_config raised {type(exc).__name__}: {exc}") from exc
    require(accepted > 0, "the backend accepts none of Label Studio's 69 templates")


def _fitted(target: Target) -> tuple[Scenario, Path]:
    """Train once on the first scenario with ``train_tasks``; later checks reuse the version."""
    scenario = next((s for s in scenarios_of(target) if s.train_tasks), None)
    require(scenario is not None, "a trainable backend needs a scenario with train_tasks")
    assert scenario is not None
    workdir = target.workdir / "fit"
    if not (workdir / ".fitted").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = target.context(scenario)
        job = make_train_job(
            target.backend(),
            ctx.label_config,
            copy.deepcopy([dict(t) for t in scenario.train_tasks]),
            workdir=workdir,
            media=ctx.media,
            project=ctx.project,
            extra_params=ctx.extra_params,
            reason="conformance",
        )
        result = target.backend().fit(job)
        require(
            result is not None, "fit returned None for the scenario's train_tasks (nothing trained)"
        )
        (workdir / ".fitted").touch()
    return scenario, workdir


def check_fit(target: Target) -> None:
    """``fit`` trains from annotated tasks into ``workdir``, and the result predicts validly.

    Troubleshooting: read annotations from ``job.tasks[i]["annotations"]``, write artifacts
    only under ``job.workdir``, load them in ``predict`` from ``ctx.model_dir``.
    """
    backend = target.backend()
    if not backend.trainable:
        raise CheckSkipped("the backend does not train")
    scenario, workdir = _fitted(target)
    out = list(backend.predict(scenario.tasks, target.context(scenario, model_dir=workdir)))
    require(len(out) == len(scenario.tasks), "after fit: one prediction per task")
    _check_regions(scenario, out, "after fit")


def check_evaluate(target: Target) -> None:
    """``evaluate`` scores the base and the trained version on annotated tasks, in [0, 1].

    The promotion gate calls it for the challenger and the champion on the held-out tasks; a
    version whose evaluation raises scores 0 and is never promoted.

    Troubleshooting: return ``Evaluation(metric, value)`` with a short metric name and a
    finite value in [0, 1], higher meaning better; run ``predict`` on unannotated copies of the
    tasks (``prelabel.annotations.unannotated``) and compare with each task's
    ``prelabel.annotations.judged_result``.
    """
    backend = target.backend()
    if not backend.trainable:
        raise CheckSkipped("the backend does not train, so no gate evaluates it")
    scenario, workdir = _fitted(target)
    tasks = copy.deepcopy([dict(t) for t in scenario.train_tasks])
    for model_dir, which in ((None, "base"), (workdir, "trained")):
        evaluation = backend.evaluate(tasks, target.context(scenario, model_dir=model_dir))
        require(
            isinstance(evaluation, Evaluation),
            f"evaluate returned {evaluation!r} for the {which} version, not an Evaluation",
        )
        require(
            isinstance(evaluation.metric, str) and bool(evaluation.metric.strip()),
            f"the {which} version's Evaluation has no metric name",
        )
        value = evaluation.value
        require(
            isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0,
            f"the {which} version's {evaluation.metric} is {value!r}, not a number in [0, 1]",
        )


def check_interactive(target: Target) -> None:
    """An interactive backend answers a click/box context with one prediction per task.

    Troubleshooting: read ``ctx.interaction`` (``params.context.result`` items, percent
    coordinates with ``original_width``/``original_height``) and ignore types you don't use.
    """
    backend = target.backend()
    if not backend.interactive:
        raise CheckSkipped("the backend is not interactive")
    scenario = next((s for s in scenarios_of(target) if s.interaction), None)
    require(scenario is not None, "an interactive backend needs a scenario with `interaction`")
    assert scenario is not None
    out = list(backend.predict(scenario.tasks[:1], target.context(scenario, interactive=True)))
    require(len(out) == 1, f"{len(out)} predictions for 1 interactive task")
    _check_regions(scenario, out, "interactive")


CHECKS: dict[str, Callable[[Target], None]] = {
    "entry_point": check_entry_point,
    "lazy_imports": check_lazy_imports,
    "settings": check_settings,
    "load_idempotent": check_load_idempotent,
    "predict_empty": check_predict_empty,
    "one_per_task": check_one_per_task,
    "regions_valid": check_regions_valid,
    "unsupported_config": check_unsupported_config,
    "templates": check_templates,
    "fit": check_fit,
    "evaluate": check_evaluate,
    "interactive": check_interactive,
    "http_replay": check_http_replay,
}
