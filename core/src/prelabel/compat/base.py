"""``LabelStudioMLBase``: the reference SDK's model base class, on prelabel's core.

Code written for ``label_studio_ml.model.LabelStudioMLBase`` runs with the import changed.
Differences from the reference, all deliberate, are listed in this package's README.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from prelabel.compat._config import parse_config
from prelabel.compat._store import CompatStore
from prelabel.compat._tags import NameFilter, TagType
from prelabel.compat.label_interface import LabelInterface
from prelabel.compat.response import ModelResponse
from prelabel.config import LabelConfig, LabelMap
from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings, load_settings

__all__ = ["Binding", "LabelStudioMLBase", "bump_version"]

log = logging.getLogger(__name__)

# Bookkeeping keys, kept apart from the user's keys by a prefix no SDK code uses.
TRAINED_KEY = "prelabel:trained"
#: preload_task_data's default: the whole of task["data"] (None stays None, as in the SDK).
_TASK_DATA: Any = object()
BASE_KEY = "prelabel:base_version"


@dataclass(frozen=True)
class Binding:
    """Where a model instance keeps its state: the store, its project key, a media resolver."""

    store: CompatStore
    project: str
    media: MediaResolver | None = None


_BINDING: ContextVar[Binding | None] = ContextVar("prelabel_compat_binding", default=None)


@contextlib.contextmanager
def bound(binding: Binding) -> Iterator[None]:
    """Instances created inside this block use ``binding`` (the server's store and project)."""
    token = _BINDING.set(binding)
    try:
        yield
    finally:
        _BINDING.reset(token)


@cache
def _standalone_store(model_dir: str) -> CompatStore:
    return CompatStore(Path(model_dir))


def _standalone_binding(project: str) -> Binding:
    # A model built outside `prelabel start` (a user's own test): state under MODEL_DIR, as in
    # the reference SDK, else under PRELABEL_MODEL_DIR.
    model_dir = os.environ.get("MODEL_DIR") or str(load_settings(CoreSettings).model_dir)
    return Binding(_standalone_store(model_dir), project)


def bump_version(version: str) -> str:
    """The next version: ``1.4.2`` → ``1.5.0``; ``sentiment-v7`` → ``sentiment-v8``; else ``-1``."""
    semver = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", version)
    if semver:
        return f"{semver[1]}.{int(semver[2]) + 1}.0"
    number = re.search(r"(\d+)$", version)
    if number:
        digits = number[1]
        return version[: number.start()] + str(int(digits) + 1).zfill(len(digits))
    return f"{version}-1"


class LabelStudioMLBase:
    """Base class of models written against Label Studio's ML SDK.

    Under ``prelabel start`` the server creates one instance per project (``setup()`` runs
    once per project and process, not per request) and keeps it while the project is active;
    ``fit`` runs in a background job on its own instance. Override :meth:`setup`,
    :meth:`predict` and optionally :meth:`fit`.
    """

    INITIAL_MODEL_VERSION = "0.0.1"
    _interface: LabelInterface | None = None
    TRAIN_EVENTS: tuple[str, ...] = (
        "ANNOTATION_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATIONS_DELETED",
        "START_TRAINING",
    )

    def __init__(
        self, project_id: str | None = None, label_config: str | None = None, **kwargs: Any
    ) -> None:
        self.project_id = str(project_id) if project_id is not None else ""
        self._binding = _BINDING.get() or _standalone_binding(self.project_id)
        self._phase = "init"
        if label_config is not None:
            self.use_label_config(label_config)
        elif self.label_config is None:  # none given, and /setup has not stored one either
            log.warning("%s created without a label config.", type(self).__name__)
        if not self.model_version:
            self.set("model_version", self.INITIAL_MODEL_VERSION)
        self._phase = "setup"
        try:
            self.setup()
        finally:
            self._phase = ""

    # -- hooks ----------------------------------------------------------------------------

    def setup(self) -> None:
        """Prepare the model (load weights, set ``model_version``); once per project."""

    def predict(
        self, tasks: list[dict[str, Any]], context: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]] | ModelResponse | None:
        """Return one prediction dict per task (or a :class:`ModelResponse`)."""
        return None

    def fit(self, event: str, data: dict[str, Any], **kwargs: Any) -> Any:
        """Update the model on a webhook ``event`` whose body (without ``action``) is ``data``."""
        return None

    def process_event(
        self,
        event: str,
        data: dict[str, Any],
        job_id: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Any:
        """Call :meth:`fit` for training events (as the reference SDK does)."""
        if event not in self.TRAIN_EVENTS:
            return None
        return self.fit(event, data, job_id=job_id, **(additional_params or {}))

    # -- per-project state ----------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The project's value for ``key`` (``None`` if unset); any JSON value."""
        return self._binding.store.get(self._binding.project, key)

    def set(self, key: str, value: Any) -> None:
        """Store a JSON value for the project, visible to every worker and the trainer."""
        if key == "model_version":
            value = str(value)
            if self._keep_trained_version(value):
                return
        self._binding.store.set(self._binding.project, key, value)

    def has(self, key: str) -> bool:
        """Whether the project has a value for ``key``."""
        return self._binding.store.has(self._binding.project, key)

    def _keep_trained_version(self, version: str) -> bool:
        """Record versions by phase; ``True`` when ``setup`` must not overwrite a trained one.

        ``setup()`` usually sets a fixed version; ``fit()`` sets newer ones. A ``setup()`` that
        sets the same base version as when the trained version was made keeps the trained
        version; a new base version (a new model.py) replaces it.
        """
        store, project = self._binding.store, self._binding.project
        if self._phase == "setup":
            store.set(project, BASE_KEY, version)
            trained = store.get(project, TRAINED_KEY)
            return isinstance(trained, dict) and trained.get("base") == version
        if self._phase == "fit":
            store.set(
                project, TRAINED_KEY, {"base": store.get(project, BASE_KEY), "version": version}
            )
        return False

    @property
    def model_version(self) -> str | None:
        """The project's model version (a string; the SDK returned a ``semver.Version``)."""
        value = self.get("model_version")
        return None if value is None else str(value)

    def bump_model_version(self) -> str:
        """Increase the version (semver minor, else a trailing number) and return it."""
        new = bump_version(self.model_version or self.INITIAL_MODEL_VERSION)
        self.set("model_version", new)
        return new

    # -- labeling config ------------------------------------------------------------------

    def use_label_config(self, label_config: str) -> None:
        """Make ``label_config`` the project's config (parsed now: a bad one raises here)."""
        config = LabelConfig.cached(label_config)
        if self.get("label_config") != label_config:
            self.set("label_config", label_config)
            self.set("parsed_label_config", json.dumps(parse_config(config)))

    @property
    def label_config(self) -> str | None:
        """The project's labeling config XML."""
        value = self.get("label_config")
        return value if isinstance(value, str) else None

    @property
    def config(self) -> LabelConfig:
        """The labeling config parsed by prelabel (controls, objects, labels).

        Raises:
            ValueError: the model has no labeling config.
        """
        if not self.label_config:
            raise ValueError(f"{type(self).__name__} has no labeling config for its project.")
        return LabelConfig.cached(self.label_config)

    @property
    def parsed_label_config(self) -> dict[str, Any]:
        """LS's ``parse_config`` dict: ``{control: {"type", "to_name", "inputs", "labels"…}}``."""
        return parse_config(self.config) if self.label_config else {}

    @property
    def label_interface(self) -> LabelInterface:
        """The labeling config with label-studio-sdk's ``LabelInterface`` names.

        Raises:
            ValueError: the model has no labeling config.
        """
        xml = self.config.xml
        if self._interface is None or self._interface.config != xml:
            self._interface = LabelInterface(self.config)
        return self._interface

    def set_extra_params(self, extra_params: Any) -> None:
        """Store the project's ``extra_params`` (a JSON string or object)."""
        self.set("extra_params", extra_params)

    @property
    def extra_params(self) -> dict[str, Any]:
        """The project's ``extra_params`` as a dict (``{}`` when unset or not an object)."""
        value = self.get("extra_params")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return {}
        return value if isinstance(value, dict) else {}

    def get_first_tag_occurence(
        self,
        control_type: TagType,
        object_type: TagType,
        *filters: NameFilter | None,
        **named_filters: NameFilter | None,
    ) -> tuple[str, str, str]:
        """``(from_name, to_name, data key)``: ``LabelInterface.get_first_tag_occurence``."""
        return self.label_interface.get_first_tag_occurence(
            control_type, object_type, *filters, **named_filters
        )

    def build_label_map(self, tag_name: str, names: list[str]) -> dict[str, str]:
        """``{model name: LS label}`` via ``predicted_values``, exact, then case-insensitive names."""
        return dict(LabelMap.build(self.config.control(tag_name), names).mapping)

    # -- media ----------------------------------------------------------------------------

    def _media(self) -> MediaResolver:
        if self._binding.media is None:
            # Standalone: configured from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY.
            self._binding = replace(self._binding, media=MediaResolver(load_settings(CoreSettings)))
        assert self._binding.media is not None
        return self._binding.media

    def get_local_path(
        self,
        url: str,
        project_dir: str | None = None,
        ls_host: str | None = None,
        ls_access_token: str | None = None,
        task_id: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> str:
        """A local file with the media behind ``url`` (LS uploads, local files, cloud, http).

        ``task_id`` is required for cloud-storage URIs. ``ls_host``/``ls_access_token`` are
        used only when ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY`` are unset.
        """
        media = self._media()
        if ls_host or ls_access_token:
            media = media.with_credentials(hostname=ls_host, access_token=ls_access_token)
        return str(media.local_path(url, task_id=task_id))

    def preload_task_data(
        self, task: dict[str, Any], value: Any = _TASK_DATA, read_file: bool = True
    ) -> Any:
        """Replace media URLs in ``value`` (default: ``task["data"]``) by file contents or paths.

        Contents are text when they decode as UTF-8, else bytes (the SDK broke on binary). An
        explicit ``None`` (a missing data key) comes back as ``None``, as in the SDK.
        """
        if value is _TASK_DATA:
            value = task.get("data")
        if isinstance(value, dict):
            return {k: self.preload_task_data(task, v, read_file) for k, v in value.items()}
        if isinstance(value, list):
            return [self.preload_task_data(task, v, read_file) for v in value]
        if MediaResolver.is_media_url(value):
            path = Path(self.get_local_path(value, task_id=task.get("id")))
            if not read_file:
                return str(path)
            data = path.read_bytes()
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data
        return value

    def get_label_studio_access_token(self) -> str | None:
        """The LS API key from the environment, as the SDK reads it."""
        return os.environ.get("LABEL_STUDIO_API_KEY") or os.environ.get("LABEL_STUDIO_ACCESS_TOKEN")
