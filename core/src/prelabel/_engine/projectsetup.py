"""What a project may set at ``/setup``: backend settings through ``extra_params``, and which
Label Studio it belongs to. Both come from whoever can reach ``/setup`` (see SECURITY.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from prelabel._engine.store import ProjectState
from prelabel.backend import Backend
from prelabel.errors import Forbidden, InvalidExtraParams
from prelabel.settings import BackendSettings, CoreSettings

__all__ = ["check_hostname", "merge_extra_params"]

log = logging.getLogger(__name__)


def merge_extra_params(backend: Backend, extra_params: Mapping[str, Any]) -> BackendSettings:
    """``backend``'s settings with a project's ``extra_params`` applied.

    Raises:
        InvalidExtraParams: a key is unknown, has the wrong type, or is server-only (it
            decides where secrets go or what the server reads and writes).
    """
    base = backend.settings
    refused = sorted(set(extra_params) & type(base).server_only())
    if refused:
        prefix = backend.env_prefix()
        raise InvalidExtraParams(
            f"extra_params may not set {', '.join(refused)} for the {backend.name} backend: it "
            "decides where secrets go or what the server reads and writes, so only the "
            f"server's environment may set it ({', '.join(prefix + n.upper() for n in refused)})."
            " Remove it from the project's Extra params in Label Studio."
        )
    try:
        return type(base).model_validate({**base.model_dump(), **extra_params})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        known = ", ".join(sorted(type(base).model_fields)) or "none"
        raise InvalidExtraParams(
            f"Invalid extra_params for the {backend.name} backend: {problems}. "
            f"Accepted keys: {known}."
        ) from None


def check_hostname(settings: CoreSettings, state: ProjectState, hostname: str | None) -> None:
    """Refuse a ``/setup`` naming another Label Studio than the project's first one.

    Without ``LABEL_STUDIO_URL`` the hostname ``/setup`` sends is where media, exports and the
    project's access token go, and whoever reaches ``/setup`` can send one: the first one seen
    per project is kept, and a different one is refused and logged.

    Raises:
        Forbidden: ``hostname`` differs from the one the project was set up with.
    """
    if settings.label_studio_url or not hostname or not state.hostname:
        return
    if hostname.rstrip("/") == state.hostname.rstrip("/"):
        return
    log.warning(
        "Refused /setup for project %s naming Label Studio %r: the project belongs to %r.",
        state.key,
        hostname,
        state.hostname,
    )
    raise Forbidden(
        f"Project {state.key} is connected to the Label Studio at {state.hostname}; this "
        f"request names {hostname!r}. A caller may not move a project to another Label "
        "Studio (it would receive its token and feed its training). If Label Studio really "
        "moved, set LABEL_STUDIO_URL for this backend."
    )
