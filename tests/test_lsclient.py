"""LabelStudioClient against a real loopback server emulating Label Studio's API."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from prelabel._ls import client as lsclient
from prelabel._ls.client import LabelStudioClient, decode_jwt
from prelabel._ls.redact import safe_url
from prelabel.errors import UpstreamError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(payload: dict[str, Any]) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    return ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(b"sig")]
    )


PAT = make_jwt({"token_type": "refresh", "exp": int(time.time()) + 200 * 365 * 86400, "jti": "p"})
LEGACY = "0123456789abcdef0123456789abcdef01234567"
LEGACY_OFF = (
    "Authentication token no longer valid: legacy token authentication has been disabled for "
    "this organization"
)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


class FakeLS:
    """Just enough of LS 1.23's API: token refresh, whoami, export, auth rules."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: Counter[str] = Counter()
        self.auth_seen: list[str] = []
        self.export_args: dict[str, str] = {}
        self.access_lifetime = 300
        self.legacy_enabled = True
        self.reject_bearer = False
        self.valid_access: set[str] = set()
        self.issued: list[str] = []
        self.tasks: list[dict[str, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.calls[request.path] += 1
        return self.dispatch(request)(environ, start_response)

    def refresh(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("refresh") != PAT:
            return json_response({"detail": "Token has wrong type", "code": "token_not_valid"}, 401)
        exp = int(time.time()) + self.access_lifetime
        access = make_jwt({"token_type": "access", "exp": exp, "jti": str(len(self.issued))})
        self.valid_access.add(access)
        self.issued.append(access)
        return json_response({"access": access})

    def denied(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        self.auth_seen.append(header)
        scheme, _, credential = header.partition(" ")
        if scheme == "Bearer" and credential in self.valid_access and not self.reject_bearer:
            return None
        if scheme == "Token" and credential == LEGACY:
            return None if self.legacy_enabled else json_response({"detail": LEGACY_OFF}, 401)
        return json_response({"detail": "Authentication credentials were not provided."}, 401)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/api/token/refresh/" and request.method == "POST":
            return self.refresh(request)
        if path == "/api/slow":
            time.sleep(1.5)
        denied = self.denied(request)
        if denied is not None:
            return denied
        if path == "/api/current-user/whoami":
            return json_response(
                {"id": 7, "email": "ann@example.com", "username": "ann", "active_organization": 1}
            )
        if path == "/api/projects/3/export":
            self.export_args = dict(request.args)
            return json_response(self.tasks)
        if path == "/api/moved":
            return Response(status=301, headers={"Location": "/api/current-user/whoami"})
        if path == "/api/away":
            return Response(status=302, headers={"Location": "http://example.invalid/x"})
        return json_response({"detail": "Not found."}, 404)


@pytest.fixture
def ls(loopback: Callable[[Any], str]) -> FakeLS:
    fake = FakeLS()
    fake.url = loopback(fake)
    return fake


@pytest.fixture
def other(loopback: Callable[[Any], str]) -> tuple[str, list[dict[str, str]]]:
    """A second origin that records the headers it receives."""
    seen: list[dict[str, str]] = []

    def app(environ: Any, start_response: Any) -> Any:
        seen.append(dict(Request(environ).headers))
        return json_response({"ok": True})(environ, start_response)

    return loopback(app), seen


def test_token_kind_detection() -> None:
    assert decode_jwt(PAT) is not None
    assert decode_jwt(LEGACY) is None
    assert decode_jwt("a.b.c") is None
    assert LabelStudioClient("http://ls:8080", PAT).token_kind == "pat"
    assert LabelStudioClient("http://ls:8080", LEGACY).token_kind == "legacy"
    assert LabelStudioClient("http://ls:8080", None).token_kind == "none"
    assert LabelStudioClient("http://ls:8080", "").auth_headers() == {}


def test_url_must_have_a_scheme() -> None:
    with pytest.raises(UpstreamError, match="LABEL_STUDIO_URL"):
        LabelStudioClient("ls:8080", PAT)


def test_pat_is_exchanged_once_and_the_access_token_cached(ls: FakeLS) -> None:
    with LabelStudioClient(ls.url + "/", PAT) as client:
        assert client.url == ls.url
        for _ in range(3):
            assert client.check()["user"] == "ann@example.com"
    assert ls.calls["/api/token/refresh/"] == 1
    assert all(h.startswith("Bearer ") and PAT not in h for h in ls.auth_seen)


def test_concurrent_callers_share_one_refresh(ls: FakeLS) -> None:
    client = LabelStudioClient(ls.url, PAT)
    headers: list[dict[str, str]] = []
    threads = [
        threading.Thread(target=lambda: headers.append(client.auth_headers())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ls.calls["/api/token/refresh/"] == 1
    assert len({h["Authorization"] for h in headers}) == 1


def test_access_token_is_refreshed_when_it_expires(
    ls: FakeLS, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = LabelStudioClient(ls.url, PAT)
    client.check()
    monkeypatch.setattr(lsclient, "_now", lambda: time.time() + ls.access_lifetime + 1)
    client.check()
    assert ls.calls["/api/token/refresh/"] == 2


def test_short_lived_token_is_reused_until_shortly_before_exp(ls: FakeLS) -> None:
    ls.access_lifetime = 20  # margin shrinks to half the lifetime, so it stays usable
    client = LabelStudioClient(ls.url, PAT)
    client.check()
    client.check()
    assert ls.calls["/api/token/refresh/"] == 1


def test_401_refreshes_once_and_retries(ls: FakeLS) -> None:
    client = LabelStudioClient(ls.url, PAT)
    client.check()
    ls.valid_access.clear()  # LS no longer accepts the cached access token
    assert client.check()["user_id"] == 7
    assert ls.calls["/api/token/refresh/"] == 2
    assert ls.calls["/api/current-user/whoami"] == 3


def test_persistent_401_does_not_loop(ls: FakeLS) -> None:
    ls.reject_bearer = True
    client = LabelStudioClient(ls.url, PAT)
    with pytest.raises(UpstreamError) as err:
        client.check()
    message = str(err.value)
    assert f"{ls.url}/api/current-user/whoami" in message
    assert "401" in message and "personal access token" in message
    assert PAT not in message
    assert ls.calls["/api/token/refresh/"] == 2


def test_refresh_rejection_names_the_endpoint_and_the_fix(ls: FakeLS) -> None:
    wrong = make_jwt({"token_type": "access", "exp": int(time.time()) + 60})
    with pytest.raises(UpstreamError) as err:
        LabelStudioClient(ls.url, wrong).check()
    message = str(err.value)
    assert f"{ls.url}/api/token/refresh/" in message and "401" in message
    assert "Personal Access Token" in message and "Token has wrong type" in message
    assert wrong not in message


def test_legacy_token_is_sent_as_token(ls: FakeLS) -> None:
    client = LabelStudioClient(ls.url, LEGACY)
    assert client.auth_headers() == {"Authorization": f"Token {LEGACY}"}
    assert client.check()["auth"] == "legacy token"
    assert ls.calls["/api/token/refresh/"] == 0


def test_disabled_legacy_token_explains_the_fix(ls: FakeLS) -> None:
    ls.legacy_enabled = False
    with pytest.raises(UpstreamError) as err:
        LabelStudioClient(ls.url, LEGACY).check()
    message = str(err.value)
    assert f"{ls.url}/api/current-user/whoami" in message and "HTTP 401" in message
    # LS's own words name the case: the fix names the setting (only an admin can change it).
    assert "legacy tokens turned off (LS 1.23's default)" in message
    assert "People → API Token Settings → Legacy Tokens" in message
    assert "personal access token" in message and LEGACY not in message


def test_missing_key_says_to_set_it(ls: FakeLS) -> None:
    with pytest.raises(UpstreamError, match="set LABEL_STUDIO_API_KEY"):
        LabelStudioClient(ls.url, None).check()


def test_connection_refused_gives_url_advice(closed_url: str) -> None:
    url = closed_url
    with pytest.raises(UpstreamError) as err:
        LabelStudioClient(url, LEGACY, timeout=2).check()
    message = str(err.value)
    assert url in message and "LABEL_STUDIO_URL" in message
    assert "host.docker.internal" in message


def test_refresh_against_unreachable_ls_is_upstream_error(closed_url: str) -> None:
    with pytest.raises(UpstreamError, match="api/token/refresh"):
        LabelStudioClient(closed_url, PAT, timeout=2).auth_headers()


def test_timeout_is_reported(ls: FakeLS) -> None:
    client = LabelStudioClient(ls.url, LEGACY, timeout=0.3)
    with pytest.raises(UpstreamError, match=r"did not answer .*/api/slow within 0.3 s"):
        client.request("GET", "/api/slow")


def test_export_keeps_annotated_tasks_and_drops_cancelled(ls: FakeLS) -> None:
    ok = {"id": 11, "result": [], "was_cancelled": False}
    skipped = {"id": 12, "result": [], "was_cancelled": True}
    ls.tasks = [
        {"id": 1, "data": {"text": "a"}, "annotations": [ok, skipped]},
        {"id": 2, "data": {"text": "b"}, "annotations": [skipped]},
        {"id": 3, "data": {"text": "c"}, "annotations": []},
        {"id": 4, "data": {"text": "d"}},
    ]
    tasks = LabelStudioClient(ls.url, PAT).export_annotated_tasks(3)
    assert [t["id"] for t in tasks] == [1]
    assert tasks[0]["annotations"] == [ok]
    assert ls.export_args == {"exportType": "JSON", "download_all_tasks": "false"}


def test_export_of_unknown_project_names_url_and_status(ls: FakeLS) -> None:
    with pytest.raises(UpstreamError) as err:
        LabelStudioClient(ls.url, PAT).export_annotated_tasks(99)
    assert f"{ls.url}/api/projects/99/export" in str(err.value)
    assert "HTTP 404" in str(err.value)


def test_presign_url_encodes_like_label_studio() -> None:
    client = LabelStudioClient("http://ls:8080/", PAT)
    assert (
        client.presign_url(2, "s3://bucket/b.jpg")
        == "http://ls:8080/tasks/2/presign/?fileuri=czM6Ly9idWNrZXQvYi5qcGc="
    )
    encoded = client.presign_url(5, "gs://b/ü ?.png").split("fileuri=")[1]
    assert base64.urlsafe_b64decode(encoded).decode() == "gs://b/ü ?.png"


def test_check_summary(ls: FakeLS) -> None:
    assert LabelStudioClient(ls.url, PAT).check() == {
        "url": ls.url,
        "auth": "personal access token",
        "user": "ann@example.com",
        "user_id": 7,
        "organization": 1,
    }


def test_auth_is_only_sent_to_label_studio(
    ls: FakeLS, other: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = other
    client = LabelStudioClient(ls.url, LEGACY)
    assert client.send("GET", f"{url}/anything").status_code == 200
    assert "Authorization" not in seen[0]
    assert client.is_ls_url(ls.url + "/data/x") and not client.is_ls_url(url)


def test_redirects_are_followed_on_ls_only(ls: FakeLS) -> None:
    client = LabelStudioClient(ls.url, LEGACY)
    assert client.request("GET", "/api/moved").json()["id"] == 7
    with pytest.raises(UpstreamError, match=r"redirected .* to another site"):
        client.request("GET", "/api/away")


def test_safe_url_hides_credentials() -> None:
    shown = safe_url("https://u:pw@b.s3.amazonaws.com/k.jpg?X-Amz-Signature=abc&X-Amz-Date=1")
    assert "pw" not in shown and "abc" not in shown
    assert shown.startswith("https://b.s3.amazonaws.com/k.jpg?") and "X-Amz-Date=1" in shown


def test_tokens_never_reach_the_log(ls: FakeLS, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = LabelStudioClient(ls.url, PAT)
    client.check()
    ls.valid_access.clear()
    client.check()
    LabelStudioClient(ls.url, LEGACY).check()
    assert caplog.records
    assert PAT not in caplog.text and LEGACY not in caplog.text
    assert len(ls.issued) == 2
    assert not any(access in caplog.text for access in ls.issued)
