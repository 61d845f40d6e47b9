"""Turn task data values into bytes and local files (protocol §10).

* ``data:…;base64,…`` is decoded in place.
* ``/data/upload/…`` (or ``upload/…``) comes from LS; on a 404 from LS's storage proxy
  ``/storage-data/uploaded/?filepath=upload/…`` (needed when LS's storage is cloud-backed).
* ``/data/local-files/?d=<path>`` is read from ``LOCAL_FILES_DOCUMENT_ROOT`` when that is set
  and the file is there (never outside it), else fetched from LS.
* ``s3://``, ``gs://``, ``azure-blob://`` go through LS's ``/tasks/<id>/presign/`` (a 303 to
  the bucket); other ``/…`` paths and LS's own URLs are fetched from LS with LS auth.
* Other ``http(s)://`` URLs are fetched only from hosts in ``PRELABEL_MEDIA_ALLOW_HOSTS``
  (no SSRF), with the project's task-data login/password as basic auth. A host reached
  through a wildcard entry (``*``, ``*.domain``) or a redirect from LS must be on a public
  address (see :mod:`prelabel._ls.guard`).

LS's ``Authorization`` header never leaves LS's origin (see :mod:`prelabel._ls.fetch`).
Downloads land in ``<model_dir>/media-cache/<first 2 hex digits>/`` under the sha256 of their
source.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import functools
import hashlib
import logging
import mimetypes
import posixpath
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_to_bytes, urlencode, urlsplit

import httpx

from prelabel._ls.client import LabelStudioClient
from prelabel._ls.fetch import NO_LS, Fetcher, named_host, too_big, write_atomic
from prelabel._ls.guard import guarded_transport
from prelabel._ls.redact import safe_url
from prelabel.errors import MediaError
from prelabel.settings import CoreSettings

__all__ = ["CLOUD_SCHEMES", "MediaResolver"]

logger = logging.getLogger(__name__)

#: URI schemes of LS import storages resolved through the presign endpoint (b2: newer LS).
CLOUD_SCHEMES = ("s3://", "gs://", "azure-blob://", "b2://")
_LS_PATHS = ("/data/", "/storage-data/", "upload/", "/upload/")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass
class _Plan:
    """Where one task data value's bytes come from."""

    key: str  # the resolved source the cache is keyed by
    suffix: str
    urls: list[str] = field(default_factory=list)  # tried in order, the next one on a 404
    local: Path | None = None
    kind: str = "external"  # external | ls | local-files | cloud


@dataclass
class _Shared:
    """What every per-request copy of a resolver shares: settings, cache, pools, tokens."""

    settings: CoreSettings
    transport: httpx.BaseTransport | None
    http: httpx.Client
    clients: dict[tuple[str, str | None], LabelStudioClient] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, url: str, key: str | None) -> LabelStudioClient:
        # One client per (LS, key), so an access token refreshed for one request serves the next.
        with self.lock:
            found = self.clients.get((url.rstrip("/"), key))
            if found is None:
                found = LabelStudioClient(
                    url, key, timeout=self.settings.media_timeout, transport=self.transport
                )
                self.clients[(found.url, key)] = found
            return found


_URL_SAFE = str.maketrans("-_", "+/")


def _suffix_of(path: str) -> str:
    suffix = posixpath.splitext(unquote(path))[1]
    return suffix.lower() if _SUFFIX.match(suffix) else ""


def _mime_suffix(mime: str) -> str:
    mime = mime.split(";")[0].strip().lower()
    return (mimetypes.guess_extension(mime) or "") if mime else ""


class MediaResolver:
    """Fetches task media with the right credentials, limits and cache.

    Args:
        settings: core settings (LS URL and key, local-files root, allowlist, limits).
        client: the LS client to use; default: one from ``LABEL_STUDIO_URL``/``_API_KEY``.
        hostname: LS's URL as sent in ``/setup``; used only when ``LABEL_STUDIO_URL`` is unset.
        access_token: the token sent in ``/setup``; used only when no API key is set.
        login: the project's task-data login, sent as basic auth to external URLs.
        password: the matching password.
        transport: an httpx transport for every request (tests).

    Attributes:
        client: the LS client this binding uses, ``None`` when LS's address is unknown.
        cache_dir: where downloads are cached (``<model_dir>/media-cache``).
    """

    def __init__(
        self,
        settings: CoreSettings,
        *,
        client: LabelStudioClient | None = None,
        hostname: str | None = None,
        access_token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # Hosts reached through '*' or a redirect from LS get public addresses only.
        guarded = transport or guarded_transport(functools.partial(named_host, settings))
        http = httpx.Client(transport=guarded, follow_redirects=False)
        self._shared = _Shared(settings, transport, http)
        self.cache_dir = settings.model_dir / "media-cache"
        if client is None and settings.label_studio_url:
            client = self._shared.client(settings.label_studio_url, settings.label_studio_api_key)
        self._env_client = client
        self._bind(hostname, access_token, login, password)

    def _bind(
        self, hostname: str | None, token: str | None, login: str | None, password: str | None
    ) -> None:
        env = self._env_client
        self.client: LabelStudioClient | None = env
        if env is not None and env.token_kind == "none" and token:
            self.client = self._shared.client(env.url, token)
        elif env is None and hostname and hostname.startswith(("http://", "https://")):
            self.client = self._shared.client(hostname, token)
        self._basic = None
        if login and password:
            self._basic = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
        # Each binding (one per request or training job) counts its own failures.
        self._failures: dict[Any, str] = {}

    def with_credentials(
        self,
        *,
        hostname: str | None,
        access_token: str | None,
        login: str | None = None,
        password: str | None = None,
    ) -> MediaResolver:
        """A copy for one project or request, sharing cache, connection pools and tokens.

        The environment wins: ``hostname`` only counts without ``LABEL_STUDIO_URL`` and
        ``access_token`` only without ``LABEL_STUDIO_API_KEY``.
        """
        other = copy.copy(self)
        other._bind(hostname, access_token, login, password)
        return other

    @staticmethod
    def is_media_url(value: object) -> bool:
        """Whether a task data value looks like something :meth:`local_path` can fetch."""
        if not isinstance(value, str):
            return False
        head = value[:16].lower()
        return head.startswith(("http://", "https://", "data:", *CLOUD_SCHEMES, *_LS_PATHS))

    def read_bytes(self, url: str, *, task_id: int | None = None) -> bytes:
        """The bytes behind ``url`` (see :meth:`local_path`)."""
        with self._noting_failure(task_id):
            if url.startswith("data:"):
                return self._decode_data_uri(url)[0]
            return self._local_path(url, task_id).read_bytes()

    def local_path(self, url: str, *, task_id: int | None = None) -> Path:
        """A local file holding the media behind ``url``, downloaded at most once.

        Args:
            url: a task data value.
            task_id: the task's id; required for cloud-storage URIs.

        Raises:
            MediaError: naming the URL, the cause and the fix.
        """
        with self._noting_failure(task_id):
            return self._local_path(url, task_id)

    def fetch_failures(self) -> dict[Any, str]:
        """``{task id: message}`` of the fetches that failed through this resolver.

        The server gives every request and training job its own resolver, and reads this
        afterwards: a task left empty because its media failed counts as failed, not empty,
        and a training job none of whose tasks loaded fails. Fetches made without a
        ``task_id`` are under ``None``.
        """
        return dict(self._failures)

    @contextlib.contextmanager
    def _noting_failure(self, task_id: Any) -> Iterator[None]:
        try:
            yield
        except MediaError as exc:
            # One dict item assignment: atomic, so predict's worker threads may share this.
            self._failures[task_id] = str(exc)
            raise

    def _local_path(self, url: str, task_id: int | None) -> Path:
        if url.startswith("data:"):
            data, suffix = self._decode_data_uri(url)
            digest = hashlib.sha256(url.encode()).hexdigest()
            dest = self._cache_path(digest, suffix)
            return self._cached(digest) or write_atomic(
                url, url, [data], dest, self._shared.settings
            )
        plan = self._plan(url, task_id)
        if plan.local is not None:
            return plan.local
        digest = hashlib.sha256(plan.key.encode()).hexdigest()
        cached = self._cached(digest)
        if cached is not None:
            logger.debug("Media cache hit for %s", safe_url(url))
            return cached
        return self._download(url, plan, digest)

    def close(self) -> None:
        """Close connection pools (shared by every copy made with :meth:`with_credentials`)."""
        self._shared.http.close()
        with self._shared.lock:
            for client in self._shared.clients.values():
                client.close()

    @property
    def _limit(self) -> int:
        return int(self._shared.settings.media_max_mb * 1024 * 1024)

    def _cache_path(self, digest: str, suffix: str) -> Path:
        # 256 sub-directories: a lookup lists one of them, not every cached file (a glob over
        # 20,000 files in one directory took 26 ms, a quarter of a YOLO inference).
        return self.cache_dir / digest[:2] / f"{digest}{suffix}"

    def _cached(self, digest: str) -> Path | None:
        # Temporary files start with a dot, so a half-written download never matches.
        shard = self._cache_path(digest, "").parent
        return next((p for p in shard.glob(f"{digest}*") if p.is_file()), None)

    def _plan(self, url: str, task_id: int | None) -> _Plan:
        if url.lower().startswith(CLOUD_SCHEMES):
            client = self._require_client(url)
            if task_id is None:
                raise MediaError(
                    f"Cannot fetch {safe_url(url)}: cloud-storage URIs are resolved by Label "
                    "Studio's presign endpoint, which needs the task id; pass task_id=task['id']."
                )
            presign = client.presign_url(task_id, url)
            return _Plan(url, _suffix_of(urlsplit(url).path), [presign], kind="cloud")
        if url.startswith(("http://", "https://")):
            parts = urlsplit(url)
            if self.client is None or not self.client.is_ls_url(url):
                return _Plan(url, _suffix_of(parts.path), [url])
            # LS's own URL: classify the path below LS's base (LS may be mounted under a prefix).
            base = urlsplit(self.client.url).path
            if not parts.path.startswith(base + "/"):
                return _Plan(url, _suffix_of(parts.path), [url], kind="ls")
            query = f"?{parts.query}" if parts.query else ""
            return self._plan_ls(url, parts.path.removeprefix(base) + query)
        if url.startswith(("/", "upload/")):
            return self._plan_ls(url, url if url.startswith("/") else f"/{url}")
        raise MediaError(
            f"Cannot fetch {safe_url(url)!r}: it is neither a URL nor a Label Studio path "
            "(expected http(s)://, data:, /data/upload/…, /data/local-files/?d=…, s3://, gs://, "
            "azure-blob://); check that the labeling config's $variable names a media field."
        )

    def _require_client(self, url: str) -> LabelStudioClient:
        if self.client is None:
            raise MediaError(
                f"Cannot fetch {safe_url(url)}: it is served by Label Studio, whose address is "
                f"unknown: {NO_LS}."
            )
        return self.client

    def _plan_ls(self, url: str, path: str) -> _Plan:
        path = "/data" + path if path.startswith("/upload/") else path
        parts = urlsplit(path)
        if parts.path.rstrip("/") == "/data/local-files":
            relative = parse_qs(parts.query).get("d", [""])[0]
            local = self._local_file(url, relative)
            if local is not None:
                return _Plan(str(local), local.suffix, local=local, kind="local-files")
            first = self._require_client(url).absolute(path)
            return _Plan(first, _suffix_of(relative), [first], kind="local-files")
        client = self._require_client(url)
        first = client.absolute(path)
        if parts.path.startswith("/data/upload/"):
            # LS serves uploads from /data/upload/ with its default local storage, and only
            # through the storage proxy when that storage is cloud-backed.
            query = urlencode({"filepath": unquote(parts.path.removeprefix("/data/"))}, safe="/")
            proxy = client.absolute(f"/storage-data/uploaded/?{query}")
            return _Plan(first, _suffix_of(parts.path), [first, proxy], kind="ls")
        name = parse_qs(parts.query).get("filepath", [parts.path])[0]
        return _Plan(first, _suffix_of(name), [first], kind="ls")

    def _local_file(self, url: str, relative: str) -> Path | None:
        """The file under LOCAL_FILES_DOCUMENT_ROOT, or ``None`` to ask LS instead."""
        root = self._shared.settings.local_files_root
        if not relative:
            raise MediaError(f"Cannot fetch {safe_url(url)}: the local-files URL has no ?d= path.")
        if root is None:
            return None
        # LS normalizes the same way: posixpath.normpath, then relative to its root.
        base = root.resolve()
        target = (base / posixpath.normpath(relative).lstrip("/")).resolve()
        if not target.is_relative_to(base):
            raise MediaError(
                f"Refusing to read {safe_url(url)}: the path leaves LOCAL_FILES_DOCUMENT_ROOT "
                f"({root}) through '..' or a symlink; fix the task's ?d= path."
            )
        if target.is_file():
            if target.stat().st_size > self._limit:
                raise self._too_big(url, target.stat().st_size)
            return target
        if self.client is None:
            raise MediaError(
                f"Cannot fetch {safe_url(url)}: {target} does not exist under "
                f"LOCAL_FILES_DOCUMENT_ROOT ({root}); mount the directory LS serves, or {NO_LS}."
            )
        return None

    def _download(self, url: str, plan: _Plan, digest: str) -> Path:
        fetcher = Fetcher(self._shared.settings, self._shared.http, self.client, self._basic)
        tried: list[str] = []
        for candidate in plan.urls:
            response, final = fetcher.open(url, candidate)
            try:
                if response.status_code == 404 and len(tried) + 1 < len(plan.urls):
                    logger.debug("HTTP 404 for %s, trying the next form", safe_url(final))
                    tried.append(safe_url(final))
                    continue
                if not response.is_success:
                    error = fetcher.failure(url, final, response, plan.kind)
                    also = f" (Also tried {', '.join(tried)}: HTTP 404.)" if tried else ""
                    raise MediaError(f"{error}{also}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._limit:
                    raise self._too_big(url, int(declared))
                suffix = plan.suffix or _mime_suffix(response.headers.get("content-type", ""))
                dest = self._cache_path(digest, suffix)
                return write_atomic(url, final, response.iter_bytes(), dest, self._shared.settings)
            finally:
                response.close()
        raise AssertionError("unreachable: the last candidate returns or raises")

    def _decode_data_uri(self, url: str) -> tuple[bytes, str]:
        header, comma, payload = url[5:].partition(",")
        try:
            if not comma:
                raise ValueError("no comma")
            if header.lower().endswith(";base64"):
                # Each pass copies the payload (a photo is megabytes): only when it is needed.
                if "%" in payload:
                    payload = unquote(payload)
                if "-" in payload or "_" in payload:
                    # The URL-safe alphabet; b64decode would silently drop '-' and '_'.
                    payload = payload.translate(_URL_SAFE)
                data = base64.b64decode(payload + "=" * (-len(payload) % 4))
            else:
                data = unquote_to_bytes(payload)
        except (ValueError, binascii.Error):
            raise MediaError(
                f"Cannot decode {safe_url(url)}: not a valid data: URI "
                "(expected data:<mime>;base64,<payload>); fix the task data."
            ) from None
        if len(data) > self._limit:
            raise self._too_big(url, len(data))
        return data, _mime_suffix(header)

    def _too_big(self, url: str, size: int) -> MediaError:
        return too_big(url, size, self._shared.settings.media_max_mb)
