"""Fetching one media URL safely, for :mod:`prelabel.media`.

Redirects are followed hop by hop so that LS's ``Authorization`` header never leaves LS's
origin and every hop is checked against the allowlist (no SSRF through a redirect); bodies
are streamed into the cache atomically under a size limit. Messages name the URL, the cause
and the fix, and never carry a credential.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from prelabel._ls.client import MAX_REDIRECTS, LabelStudioClient, connect_hint, origin
from prelabel._ls.guard import AddressRefused
from prelabel._ls.redact import safe_url
from prelabel.errors import MediaError, UpstreamError
from prelabel.settings import CoreSettings

__all__ = ["NO_LS", "Fetcher", "named_host", "too_big", "write_atomic"]

logger = logging.getLogger(__name__)

NO_LS = (
    "set LABEL_STUDIO_URL to Label Studio's address as seen from this backend (inside Docker "
    "`localhost` is the backend's own container: use http://host.docker.internal:8080 or the "
    "LS service name) and LABEL_STUDIO_API_KEY to a personal access token"
)
#: Fixes for failed LS answers by (kind of source, status); others get the client's advice.
_LS_FIXES = {
    ("local-files", 403): "start LS with LOCAL_FILES_SERVING_ENABLED=true, or mount the same "
    "directory here and set LOCAL_FILES_DOCUMENT_ROOT",
    ("local-files", 404): "the file is missing, or no Local Files storage that the token's user "
    "can access covers that path",
    ("cloud", 404): "no import storage of the task's project covers this URI, or the task id is "
    "wrong",
    ("ls", 404): "the file is missing (deleted, or LABEL_STUDIO_URL points at another LS)",
}
#: Fixes for failed answers from other hosts (403 is looked up as 401).
_EXTERNAL_FIXES = {
    ("cloud", 401): "the presigned URL was refused (expired, or wrong credentials in LS's "
    "storage settings)",
    ("cloud", 404): "the object is missing from the bucket (deleted or renamed since import)",
    ("external", 401): "the server needs credentials: set the project's task_data_login and "
    "task_data_password in Label Studio, or make the file public",
    ("external", 404): "the file does not exist at that URL",
}


def named_host(settings: CoreSettings, host: str, port: int) -> bool:
    """Whether ``PRELABEL_MEDIA_ALLOW_HOSTS`` names ``host`` itself (not through a wildcard).

    Only a named host may be on a private network or this machine (see :mod:`prelabel._ls.guard`).
    """
    host = host.lower().strip("[]")
    return any(
        entry.strip().lower().strip("[]") in {host, f"{host}:{port}"}
        for entry in settings.media_allow_hosts
    )


def too_big(url: str, size: int, limit_mb: float) -> MediaError:
    """The error for media past ``PRELABEL_MEDIA_MAX_MB``."""
    return MediaError(
        f"Cannot fetch {safe_url(url)}: it exceeds the {limit_mb:g} MB limit (at least "
        f"{size:,} bytes); raise PRELABEL_MEDIA_MAX_MB if files this big are expected."
    )


@dataclass(frozen=True)
class Fetcher:
    """Opens media URLs with the credentials of one resolver binding.

    Attributes:
        settings: allowlist, timeout and size limit.
        http: the pool for non-LS hosts (no LS credentials, ever).
        client: the LS client, or ``None`` when LS is unknown.
        basic: ``Authorization`` value for the task-data login/password, sent only to the
            first (external) host.
    """

    settings: CoreSettings
    http: httpx.Client
    client: LabelStudioClient | None
    basic: str | None

    @property
    def limit(self) -> int:
        """The size limit in bytes."""
        return int(self.settings.media_max_mb * 1024 * 1024)

    def allowed(self, url: str) -> bool:
        """Whether ``url``'s host is in ``PRELABEL_MEDIA_ALLOW_HOSTS`` (``*``, ``*.domain``)."""
        _, host, port = origin(url)
        for entry in (e.strip().lower() for e in self.settings.media_allow_hosts):
            if entry in {"*", host, f"{host}:{port}"}:
                return True
            if entry.startswith("*.") and host.endswith(entry[1:]):
                return True
        return False

    def open(self, orig: str, url: str) -> tuple[httpx.Response, str]:
        """GET ``url`` as a stream, following redirects; returns the response and final URL.

        The caller closes the response and checks its status.
        """
        first = origin(url)
        timeout = self.settings.media_timeout
        from_ls = False  # LS chose this hop (a presigned URL): trusted without the allowlist
        for _ in range(MAX_REDIRECTS + 1):
            ls = self.client is not None and self.client.is_ls_url(url)
            if not ls and not from_ls and not self.allowed(url):
                raise self._refused(orig, url)
            headers = {"Accept": "*/*"}
            if not ls and self.basic and origin(url) == first:
                headers["Authorization"] = self.basic
            try:
                if self.client is not None and ls:
                    response = self.client.send(
                        "GET", url, stream=True, headers=headers, timeout=timeout
                    )
                else:
                    request = self.http.build_request("GET", url, headers=headers, timeout=timeout)
                    response = self.http.send(request, stream=True)
            except AddressRefused as exc:
                raise MediaError(
                    f"Refusing to fetch {safe_url(orig)}: {safe_url(url)} is on "
                    f"{', '.join(exc.addresses) or 'no address'}, which is not a public address "
                    "('*', '*.domain' and Label Studio's redirects reach public hosts only). If "
                    f"this backend should fetch from {exc.host}, name it in "
                    "PRELABEL_MEDIA_ALLOW_HOSTS."
                ) from None
            except httpx.TimeoutException:
                raise MediaError(
                    f"Cannot fetch {safe_url(orig)}: {safe_url(url)} did not answer within "
                    f"{timeout:g} s; raise PRELABEL_MEDIA_TIMEOUT or check the network."
                ) from None
            except httpx.HTTPError as exc:
                hint = connect_hint(url) if ls else "check the URL and this backend's network"
                raise MediaError(
                    f"Cannot fetch {safe_url(orig)}: cannot connect to {safe_url(url)} "
                    f"({type(exc).__name__}); {hint}."
                ) from None
            except UpstreamError as exc:  # the personal access token could not be exchanged
                raise MediaError(f"Cannot fetch {safe_url(orig)}: {exc}") from None
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                return response, url
            response.close()
            from_ls, url = ls, urljoin(url, location)
        raise MediaError(
            f"Cannot fetch {safe_url(orig)}: more than {MAX_REDIRECTS} redirects (last: "
            f"{safe_url(url)}); check the URL."
        )

    def failure(self, orig: str, url: str, response: httpx.Response, kind: str) -> MediaError:
        """The error for a non-2xx answer, with the fix that fits the source and status."""
        status, head = response.status_code, f"Cannot fetch {safe_url(orig)}"
        if self.client is not None and self.client.is_ls_url(url):
            fix = _LS_FIXES.get((kind, status))
            if fix is None:
                return MediaError(f"{head}: {self.client.explain(response, url)}")
            return MediaError(
                f"{head}: Label Studio answered HTTP {status} for {safe_url(url)}: {fix}."
            )
        fix = _EXTERNAL_FIXES.get((kind, 401 if status == 403 else status))
        fix = fix or "the server did not deliver the file; retry later or check the URL"
        return MediaError(f"{head}: {safe_url(url)} answered HTTP {status}: {fix}.")

    def _refused(self, orig: str, url: str) -> MediaError:
        _, host, port = origin(url)
        ls = f"Label Studio ({self.client.url})" if self.client else "Label Studio (unknown)"
        tail = "" if self.client else f", or if it is your Label Studio, {NO_LS}"
        return MediaError(
            f"Refusing to fetch {safe_url(orig)}: host {host}:{port} is neither {ls} nor listed "
            "in PRELABEL_MEDIA_ALLOW_HOSTS. Add it there (comma-separated; '*' allows any public "
            f"host) if this backend should download from it{tail}."
        )


def write_atomic(
    orig: str, url: str, chunks: Iterable[bytes], final: Path, settings: CoreSettings
) -> Path:
    """Write ``chunks`` to ``final`` through a temporary file, aborting past the size limit.

    The temporary file's name starts with a dot, so cache lookups never see it half-written.

    Raises:
        MediaError: the body is too big, stalls past the timeout or breaks off.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    limit, size = int(settings.media_max_mb * 1024 * 1024), 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise too_big(orig, size, settings.media_max_mb)
                out.write(chunk)
        os.replace(tmp, final)
    except httpx.TimeoutException:
        raise MediaError(
            f"Cannot fetch {safe_url(orig)}: {safe_url(url)} stalled mid-download for more than "
            f"{settings.media_timeout:g} s; raise PRELABEL_MEDIA_TIMEOUT or check the network."
        ) from None
    except httpx.HTTPError as exc:
        raise MediaError(
            f"Cannot fetch {safe_url(orig)}: the download from {safe_url(url)} broke off "
            f"({type(exc).__name__}); retry, or check the network."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("Cached %s (%d bytes)", safe_url(orig), size)
    return final
