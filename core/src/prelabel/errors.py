"""The exceptions prelabel raises, mapped to HTTP in one place (``prelabel._server.errors``).

::

    PrelabelError                      base; ``status`` is the HTTP status the server answers with
    ├── ConfigError                    invalid settings or options (names the key)           500
    │   └── InvalidExtraParams         a project's extra_params from LS are invalid            422
    ├── BackendNotFound                no installed plugin has that name (lists the installed)  500
    ├── BackendLoadError               a plugin failed to import, validate or load()            500
    ├── BadRequest                     the request body is not what Label Studio sends          400
    ├── Unauthorized                   missing or wrong credentials                              401
    ├── Forbidden                      understood but refused (e.g. another LS for a project)    403
    ├── UnsupportedConfig              the labeling config has nothing this backend can fill    422
    ├── NotFound                       unknown job, version or project                           404
    ├── TaskDataError                  a task's data cannot be used (missing key, bad media)     422
    │   └── MediaError                 a media URL could not be fetched (names URL, cause, fix)  422
    ├── PredictionFailed               the backend raised on every task of a /predict request    500
    ├── UpstreamError                  Label Studio or a model provider failed                   502
    └── ServiceUnavailable             PostgreSQL, Redis or artifact storage cannot be reached   503

A read-only or full model directory is answered 503 ``StoreUnavailable`` by the server.

Messages are written for the person who will read them in Label Studio's UI or the log:
what happened, and how to fix it. The server also puts the message in the HTTP reason phrase,
because Label Studio shows only the status line of a failed call.
"""

from __future__ import annotations

__all__ = [
    "BackendLoadError",
    "BackendNotFound",
    "BadRequest",
    "ConfigError",
    "Forbidden",
    "InvalidExtraParams",
    "MediaError",
    "NotFound",
    "PredictionFailed",
    "PrelabelError",
    "ServiceUnavailable",
    "TaskDataError",
    "Unauthorized",
    "UnsupportedConfig",
    "UpstreamError",
]


class PrelabelError(Exception):
    """Base of every error prelabel raises on purpose."""

    status: int = 500


class ConfigError(PrelabelError):
    """Settings or options are invalid; the message names the offending key."""


class InvalidExtraParams(ConfigError):
    """A project's ``extra_params`` (sent by LS at ``/setup``) are invalid; names the key."""

    status = 422


class BackendNotFound(PrelabelError):
    """No installed backend has the requested name."""


class BackendLoadError(PrelabelError):
    """A backend plugin could not be imported, validated or loaded."""


class BadRequest(PrelabelError):
    """The request body does not have the shape Label Studio sends."""

    status = 400


class Unauthorized(PrelabelError):
    """Credentials are missing or wrong."""

    status = 401


class Forbidden(PrelabelError):
    """The request is understood but refused (it would hand a project to another party)."""

    status = 403


class NotFound(PrelabelError):
    """The requested job, version or project does not exist."""

    status = 404


class UnsupportedConfig(PrelabelError):
    """The labeling config has no control this backend can fill."""

    status = 422


class TaskDataError(PrelabelError):
    """A task's data cannot be used by the backend."""

    status = 422


class MediaError(TaskDataError):
    """A media URL could not be fetched; the message names the URL, the cause and the fix."""


class PredictionFailed(PrelabelError):
    """The backend raised on every task of a ``/predict`` request; carries its message."""


class UpstreamError(PrelabelError):
    """Label Studio or a model provider answered with an error or not at all."""

    status = 502


class ServiceUnavailable(PrelabelError):
    """A service prelabel keeps its state on (PostgreSQL, Redis, artifact storage) cannot be
    reached; the message names it. Nothing is lost: the next request tries again."""

    status = 503
