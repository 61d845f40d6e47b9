"""What the server hands a backend, for calling ``predict`` and ``fit`` directly in tests.

Both helpers go through the same runtime the server uses (:func:`build_runtime`), on the
directory of the media resolver, so a test sees exactly the ``Context`` and ``TrainJob``
the server would build.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prelabel._engine.policy import ServedVersion
from prelabel._engine.runtime import Runtime, build_runtime
from prelabel._engine.store import ProjectState
from prelabel.backend import Backend, Context, TrainJob
from prelabel.config import LabelConfig
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings

__all__ = ["make_context", "make_train_job"]

_PROJECT = ProjectKey("1", 1)
_RUNTIMES: OrderedDict[tuple[int, Path], Runtime] = OrderedDict()


def _runtime(backend: Backend, media: MediaResolver | Path) -> tuple[Runtime, MediaResolver]:
    """A runtime for ``backend`` on the resolver's directory (a few are kept for reuse)."""
    resolver = media if isinstance(media, MediaResolver) else None
    root = media.cache_dir.parent if isinstance(media, MediaResolver) else media
    key = (id(backend), root)
    found = _RUNTIMES.get(key)
    if found is None or found.backend is not backend:
        found = build_runtime(
            backend, CoreSettings(model_dir=root, job_runner="external"), adopt=False
        )
        _RUNTIMES[key] = found
        while len(_RUNTIMES) > 8:
            _RUNTIMES.popitem(last=False)
    _RUNTIMES.move_to_end(key)
    return found, resolver or found.media


def _config(label_config: str | LabelConfig) -> LabelConfig:
    return LabelConfig.parse(label_config) if isinstance(label_config, str) else label_config


def make_context(
    backend: Backend,
    label_config: str | LabelConfig,
    *,
    media: MediaResolver | Path,
    project: ProjectKey = _PROJECT,
    model_version: str = "test",
    model_dir: Path | None = None,
    extra_params: Mapping[str, Any] | None = None,
    interaction: Sequence[Mapping[str, Any]] = (),
) -> Context:
    """The :class:`~prelabel.Context` the server would hand ``backend.predict``.

    Args:
        backend: the backend; the context's settings are its ``settings`` with
            ``extra_params`` applied, as the server applies a project's.
        label_config: the labeling config, as XML or parsed.
        media: the media resolver, or a directory (pytest's ``tmp_path``) where a default
            one caches downloads; project data directories are made under it too.
        project: the LS project; by default ``ProjectKey("1", 1)``.
        model_version: the version being served.
        model_dir: that version's artifacts; ``None`` for the base model.
        extra_params: the project's ``extra_params``; none by default.
        interaction: the annotator's clicks or boxes of an interactive call.

    Raises:
        prelabel.errors.InvalidExtraParams: ``extra_params`` do not fit the backend's settings.
    """
    runtime, resolver = _runtime(backend, media)
    return runtime.context(
        ProjectState(project, extra_params=dict(extra_params or {})),
        label_config=_config(label_config),
        served=ServedVersion(model_version, model_dir),
        interaction=interaction,
        media=resolver,
    )


def make_train_job(
    backend: Backend,
    label_config: str | LabelConfig,
    tasks: Sequence[Mapping[str, Any]],
    *,
    workdir: Path,
    media: MediaResolver | Path,
    holdout: Sequence[Mapping[str, Any]] = (),
    base_dir: Path | None = None,
    project: ProjectKey = _PROJECT,
    extra_params: Mapping[str, Any] | None = None,
    reason: str = "test",
) -> TrainJob:
    """The :class:`~prelabel.TrainJob` the job runner would hand ``backend.fit``.

    Args:
        backend, label_config, media, project, extra_params: as for :func:`make_context`.
        tasks: annotated tasks to train on, in LS export format.
        workdir: where ``fit`` writes the new version; created (empty) if missing.
        holdout: held-out annotated tasks (what the promotion gate will score on).
        base_dir: the served version's artifacts to fine-tune from; ``None``: untrained.
        reason: what triggered the run.
    """
    runtime, resolver = _runtime(backend, media)
    workdir.mkdir(parents=True, exist_ok=True)
    return runtime.train_job(
        ProjectState(project, extra_params=dict(extra_params or {})),
        label_config=_config(label_config),
        tasks=tasks,
        holdout=holdout,
        workdir=workdir,
        reason=reason,
        served=ServedVersion("base", base_dir),
        media=resolver,
    )
