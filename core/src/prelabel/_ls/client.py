"""A small synchronous client for the parts of Label Studio's API a backend needs.

Authentication follows protocol §10 "Credentials":

* a **personal access token** (PAT) is a JWT *refresh* token: it is exchanged at
  ``POST /api/token/refresh/`` for a short-lived access token, sent as ``Bearer``, cached
  until its ``exp`` claim and refreshed on expiry or on a 401;
* anything else is a **legacy token**, sent as ``Authorization: Token <key>`` (LS 1.23
  disables these by default).

Only URLs on Label Studio's own origin ever get these headers. Messages name the URL, the
status and the fix, and never contain a token.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from typing import Any, Literal
from urllib.parse import urljoin

import httpx

from prelabel._ls.redact import mask_tokens, safe_url
from prelabel.errors import UpstreamError

__all__ = [
    "PAT_HOWTO",
    "LabelStudioClient",
    "TokenKind",
    "connect_hint",
    "decode_jwt",
    "json_body",
]

logger = logging.getLogger(__name__)

TokenKind = Literal["pat", "legacy", "none"]

#: Refresh this long before the access token's ``exp``, so a request in flight never carries
#: a token that expires on the way (clock skew between LS and us is covered by the 401 retry).
EXPIRY_MARGIN_S = 30.0
#: How long to trust an access token that carries no ``exp`` claim.
NO_EXP_LIFETIME_S = 300.0
#: Exports of big projects take a while to build on the LS side.
EXPORT_TIMEOUT_S = 300.0
MAX_REDIRECTS = 5

_DEFAULT_PORTS = {"http": 80, "https": 443}
PAT_HOWTO = (
    "create a personal access token (LS → Account & Settings → Personal Access Token) and set "
    "it as LABEL_STUDIO_API_KEY"
)
_FIXES_401: dict[TokenKind, str] = {
    "none": "no API key is configured: set LABEL_STUDIO_API_KEY to a personal access token",
    "legacy": "the legacy token is wrong or no longer accepted: legacy tokens are disabled by "
    "default in LS 1.23; use a personal access token (LS → Account & Settings → Personal Access "
    "Token) in LABEL_STUDIO_API_KEY",
    "pat": "the personal access token was rejected even after a refresh: create a new one in "
    "LS → Account & Settings → Personal Access Token and set LABEL_STUDIO_API_KEY",
}
#: LS 1.23's answer to a legacy token when the organization's *Legacy Tokens* setting is off
#: (the default for organizations created without ``--enable-legacy-api-token``).
LEGACY_DISABLED = "legacy token authentication has been disabled"
LEGACY_DISABLED_FIX = (
    f"this organization has legacy tokens turned off (LS 1.23's default): {PAT_HOWTO}, or have "
    "an organization admin turn on People → API Token Settings → Legacy Tokens (API: "
    'POST /api/jwt/settings {"legacy_api_tokens_enabled": true})'
)
_FIXES = {
    403: "the token's user may not access this resource: use a token of a member of the "
    "project's organization",
    404: "it does not exist there: check the id or path, and that LABEL_STUDIO_URL is the right LS",
}

#: Seam for tests: the wall clock that ``exp`` claims are compared with.
_now = time.time


def _b64url_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Split a JWT into its header and payload without verifying the signature.

    Returns:
        ``(header, payload)``, or ``None`` when ``token`` is not JWT-shaped (LS's own test).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


def origin(url: str | httpx.URL) -> tuple[str, str, int]:
    """``(scheme, host, port)`` with the default port filled in: what "same site" means here."""
    u = httpx.URL(url) if isinstance(url, str) else url
    scheme = u.scheme.lower()
    return scheme, u.host.lower(), u.port or _DEFAULT_PORTS.get(scheme, 0)


def connect_hint(url: str) -> str:
    """The fix for "cannot connect to Label Studio", tailored to a ``localhost`` URL."""
    host = httpx.URL(url).host.lower()
    hint = "check that LS runs and that LABEL_STUDIO_URL is its address as seen from here"
    if host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"}:
        hint += (
            f"; inside Docker `{host}` is the backend's own container: use "
            "http://host.docker.internal:8080 or the LS service name instead"
        )
    return hint


def json_body(response: httpx.Response) -> Any:
    """The parsed body, or ``None`` when it is not JSON (or was streamed and not read)."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


def _detail(response: httpx.Response, secrets: tuple[str | None, ...] = ()) -> str:
    # LS/DRF errors are {"detail": "..."}; other bodies (HTML pages) are not worth quoting.
    # The detail may echo the token it rejected: token-like words are masked, line breaks too.
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail = body["detail"][:200]
        for secret in filter(None, secrets):
            detail = detail.replace(secret, "***")
        # JSON quoting: LS's own words in double quotes, control characters escaped.
        return f" (LS says: {json.dumps(mask_tokens(detail), ensure_ascii=False)})"
    return ""


class LabelStudioClient:
    """Talks to one Label Studio instance with one API key.

    Thread-safe: the access-token cache is guarded by a lock, and httpx clients are safe to
    share between threads.

    Attributes:
        url: LS's base URL without a trailing slash.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UpstreamError(
                f"Label Studio URL {url!r} must start with http:// or https:// "
                "(set LABEL_STUDIO_URL, e.g. http://label-studio:8080)"
            )
        self.url = url.rstrip("/")
        self._key = api_key or None
        self.token_kind: TokenKind = "none"
        if self._key:
            self.token_kind = "pat" if decode_jwt(self._key) is not None else "legacy"
        self.timeout = timeout
        self._origin = origin(self.url)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_valid_until = 0.0

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for LS, refreshing the PAT's access token if due."""
        if self.token_kind == "legacy":
            return {"Authorization": f"Token {self._key}"}
        if self.token_kind == "pat":
            return {"Authorization": f"Bearer {self._access_token()}"}
        return {}

    def _access_token(self, *, stale: str | None = None) -> str:
        with self._lock:
            # Another thread may have refreshed while we waited: reuse its token unless it is
            # the very token LS just rejected.
            access = self._access
            if access is not None and access != stale and _now() < self._access_valid_until:
                return access
            access, self._access_valid_until = self._refresh()
            self._access = access
            return access

    def _refresh(self) -> tuple[str, float]:
        url = f"{self.url}/api/token/refresh/"
        try:
            response = self._http.post(url, json={"refresh": self._key})
        except httpx.HTTPError as exc:
            raise UpstreamError(self._transport_message(url, exc)) from None
        if response.status_code != 200:
            raise UpstreamError(
                f"Label Studio refused to exchange the personal access token at {url} "
                f"(HTTP {response.status_code}){_detail(response, (self._key,))}: the token is revoked, "
                "belongs to another LS instance, or is an access token rather than a personal "
                "access token. Create a new one in LS → Account & Settings → Personal Access "
                "Token and set LABEL_STUDIO_API_KEY."
            )
        body = json_body(response)
        access = body.get("access") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access:
            raise UpstreamError(
                f"Label Studio answered {url} without an 'access' token: is LABEL_STUDIO_URL "
                "really a Label Studio recent enough for personal access tokens?"
            )
        now = _now()
        decoded = decode_jwt(access)
        exp = decoded[1].get("exp") if decoded else None
        if isinstance(exp, int | float):
            lifetime = float(exp) - now
            valid_until = now + lifetime - min(EXPIRY_MARGIN_S, max(lifetime, 0.0) / 2)
        else:
            valid_until = now + NO_EXP_LIFETIME_S
        logger.debug("Refreshed the LS access token for %s", self.url)
        return access, valid_until

    def absolute(self, path_or_url: str) -> str:
        """``path_or_url`` as an absolute URL, relative paths joined onto :attr:`url`."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.url}/{path_or_url.lstrip('/')}"

    def is_ls_url(self, url: str | httpx.URL) -> bool:
        """Whether ``url`` is on Label Studio's origin (the only one that gets LS auth)."""
        try:
            return origin(url) == self._origin
        except httpx.InvalidURL:
            return False

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request without following redirects; the caller checks the status.

        LS auth is added only for LS URLs; on a 401 with a PAT the access token is refreshed
        once and the request retried. ``kwargs`` go to :meth:`httpx.Client.build_request`.

        Raises:
            httpx.HTTPError: on transport failures (callers turn them into messages).
            UpstreamError: when refreshing the PAT fails.
        """
        url = self.absolute(path_or_url)
        ls = self.is_ls_url(url)
        sent = dict(headers or {})
        if ls:
            sent.update(self.auth_headers())
        response = self._http.send(
            self._http.build_request(method, url, headers=sent, **kwargs), stream=stream
        )
        if response.status_code == 401 and ls and self.token_kind == "pat":
            response.close()
            logger.info("LS answered 401 for %s; refreshing the access token once", safe_url(url))
            stale = sent["Authorization"].removeprefix("Bearer ")
            sent["Authorization"] = f"Bearer {self._access_token(stale=stale)}"
            response = self._http.send(
                self._http.build_request(method, url, headers=sent, **kwargs), stream=stream
            )
        return response

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        """Send a request to LS, following redirects on LS's origin; raise unless 2xx.

        Raises:
            UpstreamError: naming the URL, the status and the fix.
        """
        url = self.absolute(path_or_url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.send(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise UpstreamError(self._transport_message(url, exc)) from None
            location = response.headers.get("location")
            if not (response.is_redirect and location and method in {"GET", "HEAD"}):
                break
            target = urljoin(url, location)
            if not self.is_ls_url(target):
                # API calls never leave LS; following would hand the request to a stranger.
                raise UpstreamError(
                    f"Label Studio redirected {safe_url(url)} to another site "
                    f"({safe_url(target)}); check LABEL_STUDIO_URL (http vs https, host name)."
                )
            url = target
        if not response.is_success:
            raise UpstreamError(self.explain(response, url))
        return response

    def explain(self, response: httpx.Response, url: str | None = None) -> str:
        """A message for a failed LS response: what happened and how to fix it."""
        status = response.status_code
        head = f"Label Studio answered HTTP {status} for {safe_url(url or response.request.url)}"
        if status == 401 and self.token_kind == "legacy" and LEGACY_DISABLED in _detail(response):
            fix = LEGACY_DISABLED_FIX
        elif status == 401:
            fix = _FIXES_401[self.token_kind]
        elif status >= 500:
            fix = "Label Studio failed: see its log"
        elif response.is_redirect:
            fix = f"unexpected redirect to {safe_url(response.headers.get('location', '?'))}"
        else:
            fix = _FIXES.get(status, "the request was not accepted")
        return f"{head}{_detail(response, (self._key, self._access))}: {fix}."

    def _transport_message(self, url: str, exc: httpx.HTTPError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return f"Label Studio did not answer {safe_url(url)} within {self.timeout:g} s."
        cause = "cannot connect" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        return f"Request to Label Studio at {safe_url(url)} failed ({cause}): {connect_hint(url)}."

    def export_annotated_tasks(self, project_id: int | str) -> list[dict[str, Any]]:
        """Tasks of a project with at least one non-cancelled annotation, in LS export format.

        Cancelled (skipped) annotations are removed from each task's ``annotations``.
        """
        response = self.request(
            "GET",
            f"/api/projects/{project_id}/export",
            params={"exportType": "JSON", "download_all_tasks": "false"},
            timeout=max(self.timeout, EXPORT_TIMEOUT_S),
        )
        tasks = json_body(response)
        if not isinstance(tasks, list):
            raise UpstreamError(
                f"Label Studio's export of project {project_id} at {safe_url(response.url)} is "
                "not a JSON list of tasks: is LABEL_STUDIO_URL really Label Studio?"
            )
        kept: list[dict[str, Any]] = []
        for task in tasks:
            if not isinstance(task, dict):
                continue
            annotations = [
                a
                for a in task.get("annotations") or []
                if isinstance(a, dict) and not a.get("was_cancelled")
            ]
            if annotations:
                kept.append({**task, "annotations": annotations})
        logger.info("Exported %d annotated tasks from LS project %s", len(kept), project_id)
        return kept

    def presign_url(self, task_id: int, uri: str) -> str:
        """LS's task-level resolver URL for a cloud-storage URI (``s3://``, ``gs://``…).

        The URI is base64url-encoded with padding, as LS decodes it
        (``s3://bucket/b.jpg`` → ``czM6Ly9idWNrZXQvYi5qcGc=``).
        """
        encoded = base64.urlsafe_b64encode(uri.encode()).decode("ascii")
        return f"{self.url}/tasks/{task_id}/presign/?fileuri={encoded}"

    def check(self) -> dict[str, Any]:
        """Verify that LS is reachable and accepts the key (``prelabel doctor``).

        Returns ``{"url", "auth", "user", "user_id", "organization"}``; raises
        :class:`UpstreamError` with the fix when LS is unreachable or rejects the key.
        """
        me = json_body(self.request("GET", "/api/current-user/whoami"))
        if not isinstance(me, dict):
            raise UpstreamError(
                f"{self.url}/api/current-user/whoami did not answer a JSON object: "
                "is LABEL_STUDIO_URL really Label Studio?"
            )
        auth = {"pat": "personal access token", "legacy": "legacy token", "none": "none"}
        return {
            "url": self.url,
            "auth": auth[self.token_kind],
            "user": me.get("email") or me.get("username"),
            "user_id": me.get("id"),
            "organization": me.get("active_organization"),
        }

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelStudioClient({self.url!r}, auth={self.token_kind})"
