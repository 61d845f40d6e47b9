"""MediaResolver against real loopback servers: a fake Label Studio, a bucket, an outside host."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from prelabel._ls.client import LabelStudioClient
from prelabel._ls.fetch import Fetcher
from prelabel.errors import MediaError
from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BIG = b"x" * 50_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(payload: dict[str, Any]) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    return ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(b"sig")]
    )


PAT = make_jwt({"token_type": "refresh", "exp": int(time.time()) + 10**9, "jti": "pat"})
LEGACY = "0123456789abcdef0123456789abcdef01234567"
BASIC = "Basic " + base64.b64encode(b"user:pw").decode()


class Server:
    """A WSGI app on 127.0.0.1 that records requests; ``routes`` maps a path to a handler."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.routes: dict[str, Callable[[Request], Response]] = {}

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        request.get_data()
        self.calls[request.path] += 1
        self.requests.append(request)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        handler = self.routes.get(request.path)
        return handler(request) if handler else Response("not found", status=404)

    def auth_headers(self) -> list[str | None]:
        return [
            r.headers.get("Authorization") for r in self.requests if r.path != "/api/token/refresh/"
        ]


class FakeLS(Server):
    """LS 1.23's media endpoints behind its auth rules (PAT refresh and legacy tokens)."""

    def __init__(self, bucket: Server) -> None:
        super().__init__()
        self.bucket = bucket
        self.access: set[str] = set()
        self.issued: list[str] = []
        self.legacy_enabled = True
        self.local_serving = True
        self.uploads = {"1/a.jpg": PNG}
        self.proxied = {"upload/1/cloud.jpg": PNG}
        self.local_files = {"dir/b.png": PNG}

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/api/token/refresh/":
            if (request.get_json(silent=True) or {}).get("refresh") != PAT:
                return Response('{"detail": "Token is invalid"}', status=401)
            token = make_jwt({"token_type": "access", "exp": int(time.time()) + 300, "jti": path})
            token += str(len(self.issued))
            self.access.add(token)
            self.issued.append(token)
            return Response(json.dumps({"access": token}), content_type="application/json")
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        ok = (scheme == "Bearer" and credential in self.access) or (
            scheme == "Token" and credential == LEGACY and self.legacy_enabled
        )
        if not ok:
            return Response('{"detail": "Authentication credentials were not provided."}', 401)
        if path.startswith("/data/upload/") and path[13:] in self.uploads:
            return Response(self.uploads[path[13:]], content_type="image/jpeg")
        if path == "/storage-data/uploaded/" and request.args["filepath"] in self.proxied:
            return Response(self.proxied[request.args["filepath"]])
        if path == "/data/local-files/":
            if not self.local_serving:
                return Response("Serving local files can be dangerous", status=403)
            if request.args.get("d") in self.local_files:
                return Response(self.local_files[request.args["d"]])
        if path.startswith("/tasks/") and path.endswith("/presign/"):
            uri = base64.urlsafe_b64decode(request.args["fileuri"]).decode()
            if uri.startswith("s3://bucket/"):
                target = f"{self.bucket.url}/{uri[12:]}?X-Amz-Signature=s3cr3t&X-Amz-Expires=60"
                return Response(status=303, headers={"Location": target})
        return super().handle(request)


@pytest.fixture
def bucket(loopback: Callable[[Any], str]) -> Server:
    app = Server()

    def obj(request: Request) -> Response:
        if "Authorization" in request.headers:
            return Response("Only one auth mechanism allowed", status=400)
        if request.args.get("X-Amz-Signature") != "s3cr3t":
            return Response("AccessDenied", status=403)
        return Response(PNG, content_type="image/png")

    app.routes["/photos/c.png"] = obj
    app.url = loopback(app)
    return app


@pytest.fixture
def ls(bucket: Server, loopback: Callable[[Any], str]) -> FakeLS:
    app = FakeLS(bucket)
    app.url = loopback(app)
    return app


@pytest.fixture
def web(loopback: Callable[[Any], str]) -> Server:
    """An outside web server: public and password-protected files, redirects, big, slow."""
    app = Server()

    def private(request: Request) -> Response:
        ok = request.headers.get("Authorization") == BASIC
        return Response(PNG) if ok else Response("no", status=401)

    def chunked(request: Request) -> Response:
        return Response(iter([BIG[:10_000]] * 5))  # no Content-Length

    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(PNG)

    app.routes.update(
        {
            "/img.png": lambda r: Response(PNG, content_type="image/png"),
            "/noext": lambda r: Response(PNG, content_type="image/png"),
            "/private.png": private,
            "/big.bin": lambda r: Response(BIG),
            "/chunked.bin": chunked,
            "/slow.png": slow,
        }
    )
    app.url = loopback(app)
    return app


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("PRELABEL_", "LABEL_STUDIO_")) or key == "LOCAL_FILES_DOCUMENT_ROOT":
            monkeypatch.delenv(key)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., MediaResolver]]:
    made: list[MediaResolver] = []

    def factory(**kw: Any) -> MediaResolver:
        resolver_kw = {
            k: kw.pop(k) for k in ("hostname", "access_token", "login", "password") if k in kw
        }
        kw.setdefault("model_dir", tmp_path / "models")
        resolver = MediaResolver(CoreSettings(**kw), **resolver_kw)
        made.append(resolver)
        return resolver

    yield factory
    for resolver in made:
        resolver.close()


def host_of(server: Server) -> str:
    return server.url.removeprefix("http://")


def leftovers(resolver: MediaResolver) -> list[Path]:
    return list(resolver.cache_dir.rglob(".*")) if resolver.cache_dir.exists() else []


# -- Label Studio uploads and tokens ------------------------------------------------------


def test_upload_with_pat_is_cached(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    path = media.local_path("/data/upload/1/a.jpg")
    assert path.read_bytes() == PNG and path.suffix == ".jpg"
    assert path.parent.parent == media.cache_dir and path.parent.name == path.name[:2]  # 256 shards
    assert media.local_path("/data/upload/1/a.jpg") == path
    assert media.read_bytes("upload/1/a.jpg") == PNG  # the short form is the same file
    assert media.local_path(f"{ls.url}/data/upload/1/a.jpg") == path  # and LS's absolute URL
    assert ls.calls["/data/upload/1/a.jpg"] == 1
    assert ls.calls["/api/token/refresh/"] == 1
    assert all(h and h.startswith("Bearer ") for h in ls.auth_headers())


def test_upload_falls_back_to_the_storage_proxy(
    ls: FakeLS, make: Callable[..., MediaResolver]
) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    assert media.read_bytes("/data/upload/1/cloud.jpg") == PNG
    assert ls.calls["/data/upload/1/cloud.jpg"] == 1
    assert ls.calls["/storage-data/uploaded/"] == 1


def test_missing_upload_names_url_and_cause(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    with pytest.raises(MediaError) as err:
        media.local_path("/data/upload/1/gone.jpg")
    message = str(err.value)
    assert "/data/upload/1/gone.jpg" in message and "404" in message and "missing" in message
    assert not leftovers(media)


def test_expired_access_token_is_refreshed_on_401(
    ls: FakeLS, make: Callable[..., MediaResolver]
) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    media.local_path("/data/upload/1/a.jpg")
    ls.access.clear()
    ls.uploads["1/second.jpg"] = PNG
    assert media.read_bytes("/data/upload/1/second.jpg") == PNG
    assert ls.calls["/api/token/refresh/"] == 2


def test_legacy_token(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=LEGACY)
    assert media.read_bytes("/data/upload/1/a.jpg") == PNG
    assert ls.auth_headers() == [f"Token {LEGACY}"]


def test_disabled_legacy_token_explains_the_fix(
    ls: FakeLS, make: Callable[..., MediaResolver]
) -> None:
    ls.legacy_enabled = False
    media = make(label_studio_url=ls.url, label_studio_api_key=LEGACY)
    with pytest.raises(MediaError) as err:
        media.local_path("/data/upload/1/a.jpg")
    message = str(err.value)
    assert "/data/upload/1/a.jpg" in message and "401" in message
    assert "personal access token" in message and LEGACY not in message


def test_missing_api_key_says_to_set_it(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url)
    with pytest.raises(MediaError, match=r"a\.jpg.*401.*set LABEL_STUDIO_API_KEY"):
        media.local_path("/data/upload/1/a.jpg")


def test_setup_credentials_are_the_fallback(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make()
    with pytest.raises(MediaError, match="LABEL_STUDIO_URL"):
        media.local_path("/data/upload/1/a.jpg")
    project = media.with_credentials(hostname=ls.url, access_token=LEGACY)
    assert project.read_bytes("/data/upload/1/a.jpg") == PNG
    assert ls.auth_headers() == [f"Token {LEGACY}"]
    assert project.local_path("/data/upload/1/a.jpg").is_relative_to(media.cache_dir)  # shared
    assert ls.calls["/data/upload/1/a.jpg"] == 1


def test_environment_wins_over_setup_credentials(
    ls: FakeLS, make: Callable[..., MediaResolver], closed_url: str
) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    project = media.with_credentials(hostname=closed_url, access_token="stale-legacy")
    assert project.read_bytes("/data/upload/1/a.jpg") == PNG
    assert all(h and h.startswith("Bearer ") for h in ls.auth_headers())


def test_setup_token_fills_a_missing_api_key(
    ls: FakeLS, make: Callable[..., MediaResolver]
) -> None:
    media = make(label_studio_url=ls.url)
    project = media.with_credentials(hostname="http://localhost:8080", access_token=LEGACY)
    assert project.read_bytes("/data/upload/1/a.jpg") == PNG


def test_copies_share_the_access_token(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    ls.uploads["1/other.jpg"] = PNG
    media.with_credentials(hostname=None, access_token=None).read_bytes("/data/upload/1/a.jpg")
    media.with_credentials(hostname=None, access_token=None).read_bytes("upload/1/other.jpg")
    assert ls.calls["/api/token/refresh/"] == 1


def test_unreachable_ls_gives_docker_advice(
    make: Callable[..., MediaResolver], closed_url: str
) -> None:
    media = make(label_studio_url=closed_url, label_studio_api_key=LEGACY)
    with pytest.raises(MediaError) as err:
        media.local_path("/data/upload/1/a.jpg")
    message = str(err.value)
    assert f"{closed_url}/data/upload/1/a.jpg" in message and "LABEL_STUDIO_URL" in message
    assert "host.docker.internal" in message


def test_relative_path_without_ls_url(make: Callable[..., MediaResolver]) -> None:
    with pytest.raises(MediaError) as err:
        make().local_path("/data/upload/1/a.jpg")
    message = str(err.value)
    assert "/data/upload/1/a.jpg" in message and "LABEL_STUDIO_URL" in message
    assert "host.docker.internal" in message


# -- local files ----------------------------------------------------------------------------


def test_local_files_read_directly(
    ls: FakeLS, make: Callable[..., MediaResolver], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "b.png").write_bytes(PNG)
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT, local_files_root=root)
    assert media.local_path("/data/local-files/?d=dir/b.png") == root / "dir" / "b.png"
    assert media.read_bytes("/data/local-files/?d=dir%2Fb.png") == PNG
    assert not ls.requests


def test_local_files_traversal_is_refused(
    make: Callable[..., MediaResolver], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    media = make(local_files_root=root)
    for url in ("/data/local-files/?d=../secret.txt", "/data/local-files/?d=link.txt"):
        with pytest.raises(MediaError) as err:
            media.local_path(url)
        assert url in str(err.value) and "LOCAL_FILES_DOCUMENT_ROOT" in str(err.value)


def test_local_files_missing_on_disk_and_no_ls(
    make: Callable[..., MediaResolver], tmp_path: Path
) -> None:
    media = make(local_files_root=tmp_path)
    with pytest.raises(MediaError, match=r"\?d=nope\.png.*does not exist"):
        media.local_path("/data/local-files/?d=nope.png")


def test_local_files_through_ls(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=LEGACY)
    path = media.local_path("/data/local-files/?d=dir/b.png")
    assert path.read_bytes() == PNG and path.suffix == ".png"
    ls.local_serving = False
    with pytest.raises(MediaError) as err:
        media.local_path("/data/local-files/?d=dir/other.png")
    assert "?d=dir/other.png" in str(err.value)
    assert "LOCAL_FILES_SERVING_ENABLED=true" in str(err.value)


# -- cloud storage --------------------------------------------------------------------------


def test_cloud_uri_goes_through_presign_without_leaking_auth(
    ls: FakeLS, bucket: Server, make: Callable[..., MediaResolver]
) -> None:
    # The bucket runs on loopback: LS's redirect may reach it only because it is named.
    media = make(
        label_studio_url=ls.url, label_studio_api_key=PAT, media_allow_hosts=[host_of(bucket)]
    )
    path = media.local_path("s3://bucket/photos/c.png", task_id=2)
    assert path.read_bytes() == PNG and path.suffix == ".png"
    presign = [r for r in ls.requests if r.path == "/tasks/2/presign/"]
    assert (
        presign[0].args["fileuri"] == base64.urlsafe_b64encode(b"s3://bucket/photos/c.png").decode()
    )
    assert presign[0].headers["Authorization"].startswith("Bearer ")
    assert bucket.auth_headers() == [None]
    assert media.local_path("s3://bucket/photos/c.png", task_id=3) == path  # cached by URI
    assert len(bucket.requests) == 1


def test_cloud_uri_errors(ls: FakeLS, make: Callable[..., MediaResolver]) -> None:
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT)
    with pytest.raises(MediaError, match=r"s3://bucket/x\.png.*task id"):
        media.local_path("s3://bucket/x.png")
    with pytest.raises(MediaError, match=r"gs://other/x\.png.*404.*import storage"):
        media.local_path("gs://other/x.png", task_id=2)
    with pytest.raises(MediaError, match=r"s3://bucket/x\.png.*LABEL_STUDIO_URL"):
        make().local_path("s3://bucket/x.png", task_id=2)


# -- outside hosts ------------------------------------------------------------------------


def test_outside_host_is_refused_unless_allowed(
    web: Server, make: Callable[..., MediaResolver]
) -> None:
    url = f"{web.url}/img.png"
    with pytest.raises(MediaError) as err:
        make().local_path(url)
    assert url in str(err.value) and "PRELABEL_MEDIA_ALLOW_HOSTS" in str(err.value)
    assert not web.requests
    for allowed in ([host_of(web)], ["127.0.0.1"]):
        assert make(media_allow_hosts=allowed).read_bytes(url) == PNG


def test_allowlist_from_environment(
    web: Server, make: Callable[..., MediaResolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRELABEL_MEDIA_ALLOW_HOSTS", json.dumps(["example.com", host_of(web)]))
    assert make().local_path(f"{web.url}/noext").read_bytes() == PNG
    assert make().local_path(f"{web.url}/noext").suffix == ".png"  # from Content-Type
    monkeypatch.setenv("PRELABEL_MEDIA_ALLOW_HOSTS", f"example.com, {host_of(web)}")
    assert make().local_path(f"{web.url}/noext").read_bytes() == PNG


def test_redirect_to_a_host_off_the_allowlist_is_refused(
    web: Server, bucket: Server, make: Callable[..., MediaResolver]
) -> None:
    web.routes["/hop"] = lambda r: Response(status=302, headers={"Location": f"{bucket.url}/x"})
    with pytest.raises(MediaError, match=rf"{web.url}/hop.*host 127\.0\.0\.1:\d+ is neither"):
        make(media_allow_hosts=[host_of(web)]).local_path(f"{web.url}/hop")
    assert not bucket.requests


def test_task_data_login_is_sent_to_the_outside_host_only(
    ls: FakeLS, web: Server, make: Callable[..., MediaResolver]
) -> None:
    media = make(
        label_studio_url=ls.url, label_studio_api_key=LEGACY, media_allow_hosts=["127.0.0.1"]
    )
    with pytest.raises(MediaError, match=r"private\.png.*401.*task_data_login"):
        media.local_path(f"{web.url}/private.png")
    project = media.with_credentials(hostname=None, access_token=None, login="user", password="pw")
    assert project.read_bytes(f"{web.url}/private.png") == PNG
    project.read_bytes("/data/upload/1/a.jpg")
    assert BASIC not in ls.auth_headers()
    web.routes["/away"] = lambda r: Response(status=302, headers={"Location": f"{ls.url}/x"})
    with pytest.raises(MediaError):
        project.local_path(f"{web.url}/away")
    assert ls.auth_headers()[-1] == f"Token {LEGACY}"  # LS's own auth, never the basic pair


def test_outside_404(web: Server, make: Callable[..., MediaResolver]) -> None:
    with pytest.raises(MediaError, match=r"/gone\.png.*404.*does not exist"):
        make(media_allow_hosts=["127.0.0.1"]).local_path(f"{web.url}/gone.png")


# -- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big.bin", "/chunked.bin"])
def test_size_limit(web: Server, make: Callable[..., MediaResolver], path: str) -> None:
    media = make(media_allow_hosts=["127.0.0.1"], media_max_mb=0.02)
    with pytest.raises(MediaError) as err:
        media.local_path(web.url + path)
    assert web.url + path in str(err.value) and "PRELABEL_MEDIA_MAX_MB" in str(err.value)
    assert not leftovers(media) and not [p for p in media.cache_dir.rglob("*") if p.is_file()]


def test_size_limit_for_local_and_data(make: Callable[..., MediaResolver], tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(BIG)
    media = make(local_files_root=tmp_path, media_max_mb=0.02)
    with pytest.raises(MediaError, match="PRELABEL_MEDIA_MAX_MB"):
        media.local_path("/data/local-files/?d=big.bin")
    with pytest.raises(MediaError, match="PRELABEL_MEDIA_MAX_MB"):
        media.read_bytes("data:application/octet-stream;base64," + base64.b64encode(BIG).decode())


def test_timeout(web: Server, make: Callable[..., MediaResolver]) -> None:
    media = make(media_allow_hosts=["127.0.0.1"], media_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(MediaError) as err:
        media.local_path(f"{web.url}/slow.png")
    assert time.monotonic() - started < 1.4
    assert f"{web.url}/slow.png" in str(err.value) and "PRELABEL_MEDIA_TIMEOUT" in str(err.value)


# -- other forms ----------------------------------------------------------------------------


def test_data_uri(make: Callable[..., MediaResolver]) -> None:
    media = make()
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert media.read_bytes(uri) == PNG
    path = media.local_path(uri)
    assert path.read_bytes() == PNG and path.suffix == ".png"
    assert media.read_bytes("data:text/plain,hello%20world") == b"hello world"
    with pytest.raises(MediaError, match="data: URI"):
        media.read_bytes("data:image/png;base64")


def test_unknown_value(make: Callable[..., MediaResolver]) -> None:
    with pytest.raises(MediaError, match="neither a URL nor a Label Studio path"):
        make().local_path("just some text")


def test_is_media_url() -> None:
    yes = [
        "https://x/a.jpg",
        "http://x",
        "/data/upload/1/a.jpg",
        "upload/1/a.jpg",
        "/data/local-files/?d=a",
        "s3://b/k",
        "GS://b/k",
        "azure-blob://c/k",
        "data:,x",
    ]
    no = ["hello", "", 3, None, {"url": "http://x"}, "ftp://x/a"]
    assert all(MediaResolver.is_media_url(v) for v in yes)
    assert not any(MediaResolver.is_media_url(v) for v in no)


def test_explicit_client(ls: FakeLS, tmp_path: Path) -> None:
    client = LabelStudioClient(ls.url, LEGACY)
    media = MediaResolver(CoreSettings(model_dir=tmp_path), client=client)
    assert media.client is client
    assert media.read_bytes("/data/upload/1/a.jpg") == PNG
    media.close()
    client.close()


def test_secrets_stay_out_of_messages_and_logs(
    ls: FakeLS, web: Server, make: Callable[..., MediaResolver], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bucket = [host_of(ls.bucket)]  # a loopback bucket: named, or LS's redirect may not reach it
    media = make(label_studio_url=ls.url, label_studio_api_key=PAT, media_allow_hosts=bucket)
    media.local_path("s3://bucket/photos/c.png", task_id=2)
    media.read_bytes("/data/upload/1/cloud.jpg")
    messages = []
    for url in ("/data/upload/9/x.jpg", f"{web.url}/img.png", "s3://bucket/no.png"):
        with pytest.raises(MediaError) as err:
            media.local_path(url, task_id=2)
        messages.append(str(err.value))
    # Only our own loggers: httpx logs request URLs (presigned ones included) at INFO.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("prelabel")]
    text = "\n".join(ours + messages)
    assert ours
    for secret in [PAT, "s3cr3t", *ls.issued]:
        assert secret not in text


def test_ls_mounted_under_a_prefix(
    ls: FakeLS, make: Callable[..., MediaResolver], loopback: Callable[[Any], str]
) -> None:
    prefixed = FakeLS(ls.bucket)
    prefixed.routes["/ls/data/upload/1/a.jpg"] = lambda r: Response(PNG)

    def strip_prefix(environ: Any, start_response: Any) -> Any:
        if environ["PATH_INFO"].startswith("/ls/"):
            environ["PATH_INFO"] = environ["PATH_INFO"][3:]
        return prefixed(environ, start_response)

    base = loopback(strip_prefix) + "/ls"
    media = make(label_studio_url=base, label_studio_api_key=LEGACY)
    assert media.read_bytes("/data/upload/1/a.jpg") == PNG
    assert media.read_bytes(f"{base}/data/upload/1/a.jpg") == PNG
    assert prefixed.calls["/data/upload/1/a.jpg"] == 1  # the same file, cached once


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        (["*"], "https://anything.example/x", True),
        (["cdn.example.com"], "https://cdn.example.com/x", True),
        (["cdn.example.com"], "https://CDN.example.com:8443/x", True),
        (["cdn.example.com:443"], "https://cdn.example.com/x", True),
        (["cdn.example.com:8443"], "https://cdn.example.com/x", False),
        (["*.example.com"], "https://a.b.example.com/x", True),
        (["*.example.com"], "https://example.com.evil.net/x", False),
        ([], "http://169.254.169.254/latest/meta-data", False),
    ],
)
def test_allowlist_entries(entries: list[str], url: str, allowed: bool, tmp_path: Path) -> None:
    settings = CoreSettings(model_dir=tmp_path, media_allow_hosts=entries)
    fetcher = Fetcher(settings, httpx.Client(), None, None)
    assert fetcher.allowed(url) is allowed
    fetcher.http.close()
