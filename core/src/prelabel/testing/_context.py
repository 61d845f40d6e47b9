"""``make_context``: a :class:`~prelabel.Context` for calling ``predict`` directly in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prelabel.backend import Backend, Context
from prelabel.config import LabelConfig
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings

__all__ = ["make_context"]

_PROJECT = ProjectKey("1", 1)


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
    settings = backend.settings
    if params:
        settings = type(settings).model_validate({**settings.model_dump(), **params})
    if isinstance(label_config, str):
        label_config = LabelConfig.parse(label_config)
    if not isinstance(media, MediaResolver):
        media = MediaResolver(CoreSettings(model_dir=media))
    return Context(
        project=project,
        label_config=label_config,
        model_version=model_version,
        model_dir=model_dir,
        settings=settings,
        extra_params=params,
        media=media,
        interaction=list(interaction),
    )
