"""What the server hands a backend, for calling ``predict`` and ``fit`` directly in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prelabel.backend import Backend, Context, TrainJob
from prelabel.config import LabelConfig
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import BackendSettings, CoreSettings

__all__ = ["make_context", "make_train_job"]

_PROJECT = ProjectKey("1", 1)


def _inputs(
    backend: Backend,
    label_config: str | LabelConfig,
    media: MediaResolver | Path,
    extra_params: Mapping[str, Any],
) -> tuple[BackendSettings, LabelConfig, MediaResolver]:
    settings = backend.settings
    if extra_params:
        settings = type(settings).model_validate({**settings.model_dump(), **extra_params})
    if isinstance(label_config, str):
        label_config = LabelConfig.parse(label_config)
    if not isinstance(media, MediaResolver):
        media = MediaResolver(CoreSettings(model_dir=media))
    return settings, label_config, media


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
            one caches downloads.
        project: the LS project; by default ``ProjectKey("1", 1)``.
        model_version: the version being served.
        model_dir: that version's artifacts; ``None`` for the base model.
        extra_params: the project's ``extra_params``; none by default.
        interaction: the annotator's clicks or boxes of an interactive call.

    Raises:
        pydantic.ValidationError: ``extra_params`` do not fit the backend's settings.
    """
    params = dict(extra_params or {})
    settings, config, resolver = _inputs(backend, label_config, media, params)
    return Context(
        project=project,
        label_config=config,
        model_version=model_version,
        model_dir=model_dir,
        settings=settings,
        extra_params=params,
        media=resolver,
        interaction=list(interaction),
    )


def make_train_job(
    backend: Backend,
    label_config: str | LabelConfig,
    tasks: Sequence[Mapping[str, Any]],
    *,
    workdir: Path,
    media: MediaResolver | Path,
    base_dir: Path | None = None,
    project: ProjectKey = _PROJECT,
    extra_params: Mapping[str, Any] | None = None,
    reason: str = "test",
) -> TrainJob:
    """The :class:`~prelabel.TrainJob` the job runner would hand ``backend.fit``.

    Args:
        backend, label_config, media, project, extra_params: as for :func:`make_context`.
        tasks: annotated tasks in LS export format.
        workdir: where ``fit`` writes the new version; created (empty) if missing.
        base_dir: the served version's artifacts to fine-tune from; ``None``: untrained.
        reason: what triggered the run.
    """
    settings, config, resolver = _inputs(backend, label_config, media, dict(extra_params or {}))
    workdir.mkdir(parents=True, exist_ok=True)
    return TrainJob(
        project=project,
        label_config=config,
        tasks=[dict(t) for t in tasks],
        workdir=workdir,
        base_dir=base_dir,
        settings=settings,
        media=resolver,
        reason=reason,
    )
