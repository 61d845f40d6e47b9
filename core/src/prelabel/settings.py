"""Settings: one pydantic model per scope, one environment prefix each.

* :class:`CoreSettings` — ``PRELABEL_*`` plus Label Studio's own names
  ``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY`` and ``LOCAL_FILES_DOCUMENT_ROOT``.
* :class:`BackendSettings` — base of every backend's nested ``Settings``; the prefix is
  ``PRELABEL_<NAME>_`` derived from the backend's ``name``. Fields marked :class:`ServerOnly`
  (and every path- or secret-typed field) come from the environment only, never from a
  project's ``extra_params``: whoever can reach ``/setup`` must not choose where secrets go or
  which files are written, and secrets do not belong in LS's project settings.

Unknown keys are errors that name the key: a typo in an environment variable must not be
silently ignored (the reference backends read env ad hoc and ignore misspellings).
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prelabel.errors import ConfigError

__all__ = ["BackendSettings", "CoreSettings", "ServerOnly", "check_environment", "load_settings"]

S = TypeVar("S", bound=BaseSettings)

ENV_PREFIX = "PRELABEL_"


def _default_model_dir() -> Path:
    return Path.home() / ".local" / "share" / "prelabel"


class CoreSettings(BaseSettings):
    """Server-wide settings (``PRELABEL_*``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", populate_by_name=True)

    backend: str | None = Field(
        default=None, description="Backend to serve when several are installed."
    )
    model_dir: Path = Field(
        default_factory=_default_model_dir,
        description="Where per-project state, model versions and the media cache live.",
    )
    basic_auth_user: str | None = Field(default=None, description="Basic-auth user LS sends.")
    basic_auth_pass: str | None = Field(default=None, description="Basic-auth password.")
    api_token: str | None = Field(
        default=None,
        description="Bearer token accepted instead of basic auth (add it to LS's webhook headers).",
    )
    max_request_mb: float = Field(default=64.0, gt=0, description="Largest request body accepted.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    score_policy: Literal["least_confidence", "margin", "entropy"] = Field(
        default="least_confidence",
        description="How class probabilities become a task's score (its confidence, in [0, 1]).",
    )
    control_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of tasks that get an empty prediction (the annotator-bias control group).",
    )
    train_trigger: Literal["annotation", "start_training"] = Field(
        default="annotation",
        description="Train after annotation events (see train_every) or only on Start Training.",
    )
    train_every: int = Field(
        default=20,
        ge=1,
        description="Train after this many new, changed or deleted annotations of a project.",
    )
    train_min_annotations: int = Field(
        default=10,
        ge=1,
        description="Annotations a project needs before its first training (Start Training: any).",
    )
    repredict: bool = Field(
        default=True,
        description=(
            "After a promotion, pre-annotate the project's unlabeled tasks in LS with the new "
            "version and select it for sorting (needs LABEL_STUDIO_URL and an API key)."
        ),
    )
    predict_new_tasks: bool = Field(
        default=False,
        description="Pre-annotate imported tasks in a background job (TASKS_CREATED webhook).",
    )
    holdout_fraction: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Share of annotated tasks held out to gate promotion of a new version.",
    )
    min_holdout: int = Field(
        default=5, ge=1, description="Fewer held-out tasks than this: promote without gating."
    )
    gate_tolerance: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Promote a challenger that scores up to this much below the champion on the "
            "held-out tasks (small holdouts are noisy; 0: it must score at least as well)."
        ),
    )
    job_runner: Literal["process", "thread", "external"] = Field(
        default="process",
        description=(
            "process: `prelabel serve` runs training in one worker process beside the server; "
            "thread: in a thread of each server process; external: you run `prelabel worker`."
        ),
    )
    job_stale_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A running job without heartbeat this long counts as lost and is retried.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL URL (postgresql://user:password@host:5432/db) for all state, shared by "
            "every replica and worker; unset: the SQLite file in PRELABEL_MODEL_DIR."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL (redis://host:6379/0): training jobs are delivered to `prelabel worker`s "
            "through an RQ queue; needs PRELABEL_DATABASE_URL."
        ),
    )
    artifacts_url: str | None = Field(
        default=None,
        description=(
            "Where model versions are kept for every replica: s3://bucket/prefix (any "
            "S3-compatible store) or a shared directory; each replica caches them under "
            "PRELABEL_MODEL_DIR. Unset: versions stay in PRELABEL_MODEL_DIR."
        ),
    )
    artifacts_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "fsspec storage options for PRELABEL_ARTIFACTS_URL as JSON, e.g. "
            '{"endpoint_url": "http://minio:9000"}; credentials preferably from AWS_* variables.'
        ),
    )
    threads: int | Literal["auto"] = Field(
        default="auto",
        description="CPU threads of each serving worker's model (auto: the cores / --workers).",
    )
    train_threads: int | Literal["auto"] = Field(
        default="auto", description="CPU threads of a training job (auto: half the cores)."
    )
    # NoDecode: the environment gives "a.com,b.com", not JSON; the validator below splits it.
    media_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra hosts media may be fetched from, besides Label Studio's (comma-separated).",
    )
    media_max_mb: float = Field(default=200.0, gt=0, description="Largest media file fetched.")
    media_timeout: float = Field(default=30.0, gt=0, description="Seconds per media request.")
    label_studio_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LABEL_STUDIO_URL", "label_studio_url"),
        description="Label Studio's base URL as seen from this backend (LABEL_STUDIO_URL).",
    )
    label_studio_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LABEL_STUDIO_API_KEY", "label_studio_api_key"),
        description="Personal access token or legacy token (LABEL_STUDIO_API_KEY).",
    )
    local_files_root: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("LOCAL_FILES_DOCUMENT_ROOT", "local_files_root"),
        description="LS's LOCAL_FILES_DOCUMENT_ROOT when this backend shares its disk.",
    )

    @field_validator("media_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("threads", "train_threads", mode="before")
    @classmethod
    def _thread_count(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"give a number of threads (1 or more) or 'auto', not {value!r}")
        return int(text)

    @field_validator("label_studio_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"LABEL_STUDIO_URL must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _check_basic_auth_pair(self) -> CoreSettings:
        # One half of the pair used to switch auth off without a word: refuse to start instead.
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            given, missing = ("USER", "PASS") if self.basic_auth_user else ("PASS", "USER")
            raise ValueError(
                f"PRELABEL_BASIC_AUTH_{given} is set but PRELABEL_BASIC_AUTH_{missing} is not: "
                "set both (the user and password of Label Studio's model form) or neither"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got {value[:40]!r}")
        return value or None

    @model_validator(mode="after")
    def _redis_needs_a_shared_database(self) -> CoreSettings:
        if self.redis_url and not self.database_url:
            raise ValueError(
                "PRELABEL_REDIS_URL needs PRELABEL_DATABASE_URL: RQ workers on other machines"
                " must see the jobs, versions and annotations the server stores"
            )
        if self.redis_url and self.job_runner == "thread":
            raise ValueError(
                "PRELABEL_JOB_RUNNER=thread runs jobs inside the server, but with"
                " PRELABEL_REDIS_URL RQ workers run them: use process or external"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.basic_auth_user and self.basic_auth_pass) or bool(self.api_token)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Keep secrets out of reprs, which end up in logs.
        secret = {
            "basic_auth_pass",
            "api_token",
            "label_studio_api_key",
            "database_url",
            "redis_url",
            "artifacts_options",
        }
        for key, value in super().__repr_args__():
            yield key, ("***" if key in secret and value else value)


class ServerOnly:
    """Marks a backend setting that only the server's environment may set.

    ``base_url: Annotated[str | None, ServerOnly()] = Field(...)``: a project's
    ``extra_params`` naming it are refused (HTTP 422 naming the key). Use it for anything that
    decides where secrets are sent (endpoints, hosts) or what runs or is written on the server;
    path- and secret-typed fields (``Path``, ``SecretStr``) are server-only without the marker.
    """

    def __repr__(self) -> str:
        return "ServerOnly()"


def _server_typed(annotation: Any) -> bool:
    """Whether a type is or contains a path or a secret (``Path | None``, ``list[Path]``…)."""
    if isinstance(annotation, type) and issubclass(
        annotation, (os.PathLike, SecretStr, SecretBytes)
    ):
        return True
    return any(_server_typed(arg) for arg in typing.get_args(annotation))


class BackendSettings(BaseSettings):
    """Base class of a backend's nested ``Settings``; prefix ``PRELABEL_<NAME>_``.

    Fields may be overridden per project by Label Studio's ``extra_params`` (see
    :meth:`prelabel.Context.settings`), except the :meth:`server_only` ones.
    """

    model_config = SettingsConfigDict(extra="forbid")

    @classmethod
    def server_only(cls) -> frozenset[str]:
        """Fields ``extra_params`` may not set: marked :class:`ServerOnly`, paths and secrets."""
        return frozenset(
            name
            for name, info in cls.model_fields.items()
            if any(isinstance(m, ServerOnly) for m in info.metadata)
            or _server_typed(info.annotation)
        )


def _suggest(key: str, known: Iterable[str]) -> str:
    # Compared without the prefix every name shares, which would make anything look close.
    names = {name.removeprefix(ENV_PREFIX): name for name in known}
    close = difflib.get_close_matches(key.removeprefix(ENV_PREFIX), list(names), n=1)
    return f" Did you mean {names[close[0]]}?" if close else ""


def check_environment(
    environ: Mapping[str, str],
    backend_prefixes: Mapping[str, type[BaseSettings]],
    ignore_prefixes: Iterable[str] = (),
) -> None:
    """Reject ``PRELABEL_*`` variables that no settings model declares.

    Args:
        environ: the environment to check (usually ``os.environ``).
        backend_prefixes: ``{"PRELABEL_YOLO_": YoloBackend.Settings, ...}`` for the backends
            whose variables may legitimately be present.
        ignore_prefixes: prefixes of other installed backends, whose settings this process
            does not read (one image may carry several backends).
    """
    ignored = tuple(p.upper() for p in ignore_prefixes)
    known = {f"{ENV_PREFIX}{name.upper()}" for name in CoreSettings.model_fields}
    for prefix, settings_cls in backend_prefixes.items():
        known |= {f"{prefix}{name.upper()}" for name in settings_cls.model_fields}
    for key in environ:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(ignored):
            continue
        hint = _suggest(upper, known) or f" Known settings: {', '.join(sorted(known))}."
        raise ConfigError(
            f"Unknown setting {key}: no prelabel or backend setting has that name.{hint}"
        )


def load_settings(cls: type[S], *, env_prefix: str | None = None, **overrides: Any) -> S:
    """Build ``cls`` from the environment (and ``overrides``), as a :class:`ConfigError` on failure."""
    try:
        if env_prefix is None:
            return cls(**overrides)
        return cls(_env_prefix=env_prefix, **overrides)
    except ValidationError as exc:
        prefix = env_prefix if env_prefix is not None else cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid {cls.__name__}: {problems}") from None
