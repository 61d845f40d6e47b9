"""The doctor's checks of Label Studio itself: reachable from here, the token, the backend.

Facts relied on (LS 1.23.2): ``GET /api/version`` answers without credentials; a legacy token
of an organization whose *Legacy Tokens* setting is off gets 401 "legacy token authentication
has been disabled for this organization" (the default for organizations created without
``--enable-legacy-api-token``); ``GET /api/ml?project=N`` makes LS call each connected
backend's ``/health`` and ``/setup`` and answers with its ``state`` and ``error_message``;
LS refuses a backend on a private address unless it runs with ``ML_BLOCK_LOCAL_IP=false``, and
cannot create its webhook unless ``SSRF_PROTECTION_ENABLED=false`` (protocol §2).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from prelabel._doctor.report import Finding
from prelabel._ls.client import PAT_HOWTO, LabelStudioClient, connect_hint, json_body
from prelabel._ls.redact import safe_url
from prelabel.errors import UpstreamError

__all__ = [
    "LOOPBACK_HOSTS",
    "check_acceptance",
    "check_reachable",
    "check_token",
    "in_container",
    "is_private",
]

TIMEOUT_S = 10.0
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})

PRIVATE_FIX = (
    "Label Studio 1.23 refuses ML backends on private addresses unless it runs with "
    "ML_BLOCK_LOCAL_IP=false, and cannot create the backend's webhook unless it also runs with "
    "SSRF_PROTECTION_ENABLED=false: set both in Label Studio's environment and restart it."
)


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman, Kubernetes)."""
    return (
        Path("/.dockerenv").exists()
        or Path("/run/.containerenv").exists()
        or "KUBERNETES_SERVICE_HOST" in os.environ
    )


def is_private(host: str, resolve: Callable[..., Any] = socket.getaddrinfo) -> bool:
    """Whether ``host`` resolves (from here) to an address LS's SSRF guard blocks."""
    try:
        addresses = {info[4][0] for info in resolve(host, None)}
    except (OSError, UnicodeError):
        return False
    return any(not ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses)


def check_reachable(url: str | None, *, container: bool) -> tuple[Finding, bool]:
    """Label Studio answers at ``url`` from where this runs; and whether it does."""
    if url and not url.startswith(("http://", "https://")):
        return (
            Finding(
                "label_studio",
                "fail",
                f"the Label Studio URL {url!r} has no http:// or https://",
                "Write it in full, e.g. http://label-studio:8080.",
            ),
            False,
        )
    if not url:
        return (
            Finding(
                "label_studio",
                "fail",
                "no Label Studio URL: LABEL_STUDIO_URL is not set (nor --ls-url)",
                "Set LABEL_STUDIO_URL to Label Studio's address as seen from this backend, e.g. "
                "http://label-studio:8080 (the backend fetches media and annotations from it).",
            ),
            False,
        )
    host = httpx.URL(url).host.lower()
    local = host in LOOPBACK_HOSTS
    try:
        started = time.monotonic()
        response = httpx.get(f"{url.rstrip('/')}/api/version", timeout=TIMEOUT_S, trust_env=False)
        elapsed = time.monotonic() - started
    except httpx.HTTPError as exc:
        cause = "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        fix = connect_hint(url) + "."
        if local and container:
            fix = (
                f"This backend runs in a container, where `{host}` is the container itself, not "
                "the machine LS runs on: set LABEL_STUDIO_URL to http://host.docker.internal:8080 "
                "(Docker Desktop, or --add-host=host.docker.internal:host-gateway) or to LS's "
                "service name on the compose network, e.g. http://label-studio:8080."
            )
        finding = Finding("label_studio", "fail", f"cannot reach {safe_url(url)} ({cause})", fix)
        return finding, False
    body = json_body(response)
    release = body.get("release") if isinstance(body, dict) else None
    if not response.is_success or not isinstance(release, str):
        return (
            Finding(
                "label_studio",
                "fail",
                f"{safe_url(url)}/api/version answered HTTP {response.status_code} without a "
                "Label Studio version",
                "LABEL_STUDIO_URL must be Label Studio's base URL (scheme, host, port; no path "
                "unless LS is served under one).",
            ),
            False,
        )
    summary = f"Label Studio {release} answers at {safe_url(url)} ({elapsed * 1000:.0f} ms)"
    if local and container:
        # It answers, so LS shares this container (or its network): fine, but worth saying.
        note = f"`{host}` from inside a container: LS runs in this same container or network"
        return Finding("label_studio", "ok", summary, details=[note]), True
    return Finding("label_studio", "ok", summary), True


def check_token(client: LabelStudioClient) -> tuple[Finding, bool]:
    """The API key works (a legacy token or a personal access token); and whether it does."""
    if client.token_kind == "none":
        return (
            Finding(
                "token",
                "fail",
                "no API key: LABEL_STUDIO_API_KEY is not set (nor --token)",
                f"Media on LS and training data need one: {PAT_HOWTO}.",
            ),
            False,
        )
    kind = "personal access token" if client.token_kind == "pat" else "legacy token"
    try:
        me = client.check()
    except UpstreamError as exc:
        return Finding("token", "fail", f"Label Studio refuses the {kind}", str(exc)), False
    who = me["user"] or f"user {me['user_id']}"
    return Finding("token", "ok", f"{kind} of {who} (organization {me['organization']})"), True


def check_acceptance(
    client: LabelStudioClient | None,
    project_id: int | None,
    backend_url: str | None,
    *,
    resolve: Callable[..., Any] = socket.getaddrinfo,
) -> tuple[Finding, dict[str, Any] | None]:
    """LS accepts the backend: its address is allowed, and for a project, LS connects to it.

    Returns the finding and LS's record of the backend in the project, if connected.
    """
    private = bool(backend_url) and is_private(httpx.URL(backend_url or "").host, resolve)
    if client is None or project_id is None:
        if not backend_url:
            return Finding(
                "ls_accepts", "skip", "give --backend-url (and --project) to check"
            ), None
        if private:
            return Finding("ls_accepts", "warn", f"{backend_url} is a private address",
                           PRIVATE_FIX), None  # fmt: skip
        return Finding("ls_accepts", "ok", f"{backend_url} is a public address"), None
    # Listing a project's backends makes LS call their /health and /setup: the state is fresh.
    backends = _get(client, "/api/ml", {"project": project_id})
    if not isinstance(backends, list):
        return Finding("ls_accepts", "fail", f"cannot list project {project_id}'s ML backends",
                       str(backends)), None  # fmt: skip
    records = [b for b in backends if isinstance(b, dict)]
    wanted = (backend_url or "").rstrip("/")
    match = [b for b in records if str(b.get("url", "")).rstrip("/") == wanted]
    if not wanted and len(records) == 1:
        match = records
    if not match:
        urls = ", ".join(str(b.get("url")) for b in records) or "none"
        fix = f"Connect it in LS: project {project_id} → Settings → Model → Connect Model"
        fix += f" with the URL {backend_url}." if backend_url else "."
        finding = Finding(
            "ls_accepts",
            "warn",
            f"project {project_id} is not connected to {backend_url or 'a backend'} "
            f"(its ML backends: {urls})",
            fix + (" " + PRIVATE_FIX if private else ""),
        )
        return finding, None
    return _connected(client, project_id, match[0], private), match[0]


def _connected(
    client: LabelStudioClient, project_id: int, ml: dict[str, Any], private: bool
) -> Finding:
    url = str(ml.get("url", "")).rstrip("/")
    state = str(ml.get("readable_state") or ml.get("state"))
    message = str(ml.get("error_message") or "").strip()
    if ml.get("state") in ("ER", "DI"):
        return Finding(
            "ls_accepts",
            "fail",
            f"Label Studio cannot use {url}: {state}" + (f": {message[:160]}" if message else ""),
            _fix_for(message, private),
        )
    hooks = _get(client, "/api/webhooks", {"project": project_id})
    target = f"{url}/webhook"
    if isinstance(hooks, list) and not any(
        isinstance(h, dict) and h.get("url") == target and h.get("is_active", True) for h in hooks
    ):
        return Finding(
            "ls_accepts",
            "warn",
            f"LS connects to {url} ({state}), but project {project_id} has no webhook to "
            f"{target}: annotations never reach the backend, so it never trains",
            f"Add the webhook in project Settings → Webhooks (URL {target}, send payload on); LS "
            "creates it when a model is connected with SSRF_PROTECTION_ENABLED=false.",
        )
    where = " (a private address: LS runs with ML_BLOCK_LOCAL_IP=false)" if private else ""
    return Finding("ls_accepts", "ok", f"LS connects to {url} ({state}){where}")


def _fix_for(message: str, private: bool) -> str:
    if "reserved network address" in message or (private and "403" in message):
        return PRIVATE_FIX
    if "401" in message or "authentication" in message.lower():
        return (
            "The backend wants basic auth: set the same user and password in LS's model form "
            "(Authentication) as PRELABEL_BASIC_AUTH_USER/PASS."
        )
    if "timed out" in message.lower() or "timeout" in message.lower():
        return "LS waits 1 s for /health and 3 s for /setup: see the backend check below."
    return (
        "Label Studio cannot reach the backend at that URL from where LS runs (a URL with "
        "localhost only works when both run on one machine, outside containers): use an address "
        "LS can reach, and check the backend's log."
    )


def _get(client: LabelStudioClient, path: str, params: dict[str, Any]) -> Any:
    """The JSON body, or the error message."""
    try:
        return client.request("GET", path, params=params, timeout=TIMEOUT_S).json()
    except (UpstreamError, ValueError) as exc:
        return str(exc)
