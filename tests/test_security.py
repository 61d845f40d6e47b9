"""Regression tests for the security findings of issue #13 (see SECURITY.md).

Secrets and paths a caller may not choose (1), the Label Studio a project belongs to (3),
half-configured auth (8), and the smaller leaks of item 11: log-line forging, secrets in
logged URLs and in Label Studio's error details.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from pydantic import Field, SecretStr

from prelabel._logging import _OneLineFormatter
from prelabel._ls.client import LabelStudioClient
from prelabel._ls.redact import safe_url
from prelabel.errors import ConfigError
from prelabel.settings import BackendSettings, CoreSettings, ServerOnly, load_settings
from prelabel.testing.reference import ReferenceBackend


class EndpointBackend(ReferenceBackend):
    """A backend with the kinds of settings that must stay on the server."""

    name: ClassVar[str] = "endpoint"

    class Settings(BackendSettings):
        threshold: float = Field(default=0.5, description="a harmless knob")
        endpoint: Annotated[str | None, ServerOnly()] = Field(default=None, description="a URL")
        token: SecretStr | None = Field(default=None, description="a secret")
        cache_dir: Path | None = Field(default=None, description="a path")
        files: list[Path] = Field(default_factory=list, description="paths")


def test_marked_and_path_fields_are_server_only():
    assert EndpointBackend.Settings.server_only() == {"endpoint", "token", "cache_dir", "files"}


@pytest.mark.parametrize("key", ["endpoint", "token", "cache_dir", "files"])
def test_setup_refuses_server_only_extra_params_naming_the_key(make_app, ls_request, key, tmp_path):
    client = make_app(EndpointBackend()).test_client()
    body = ls_request("setup")
    body["extra_params"] = {"threshold": 0.2, key: str(tmp_path / "x")}
    response = client.post("/setup", json=body)
    assert response.status_code == 422
    message = response.get_json()["message"]
    assert f"may not set {key}" in message and f"PRELABEL_ENDPOINT_{key.upper()}" in message
    assert not (tmp_path / "x").exists()
    body["extra_params"] = {"threshold": 0.2}
    assert client.post("/setup", json=body).status_code == 200


# -- the project's Label Studio (item 3) -----------------------------------------------------


def test_a_project_keeps_the_label_studio_that_set_it_up(make_app, ls_request, caplog):
    client = make_app().test_client()
    body = ls_request("setup")
    assert client.post("/setup", json=body).status_code == 200
    moved = {**body, "hostname": "http://127.0.0.1:1", "access_token": "theirs"}
    with caplog.at_level(logging.WARNING):
        response = client.post("/setup", json=moved)
    assert response.status_code == 403
    assert "LABEL_STUDIO_URL" in response.get_json()["message"]
    assert "Refused /setup" in caplog.text and "127.0.0.1:1" in caplog.text
    runtime = client.application.extensions["prelabel"]
    from prelabel.project import ProjectKey

    state = runtime.store.project(ProjectKey.parse(body["project"]))
    assert (state.hostname, state.access_token) == (body["hostname"], body["access_token"])
    # The same LS (a trailing slash aside) keeps working; so does any with LABEL_STUDIO_URL.
    assert (
        client.post("/setup", json={**body, "hostname": body["hostname"] + "/"}).status_code == 200
    )
    pinned_by_env = make_app(label_studio_url="http://127.0.0.1:8080").test_client()
    assert pinned_by_env.post("/setup", json=body).status_code == 200
    assert pinned_by_env.post("/setup", json=moved).status_code == 200


def test_serve_warns_when_open_beyond_loopback(tmp_path):
    code = (
        "import logging, sys\n"
        "from prelabel._logging import setup_logging\n"
        "from prelabel._server.preflight import warn_if_open\n"
        "from prelabel.settings import CoreSettings\n"
        "setup_logging()\n"
        "s = CoreSettings(model_dir=sys.argv[1])\n"
        "for host in ('127.0.0.1', 'localhost', '::1', '0.0.0.0'):\n"
        "    print('HOST', host, flush=True); warn_if_open(s, host)\n"
        "warn_if_open(CoreSettings(model_dir=sys.argv[1], api_token='t'), '0.0.0.0')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "Authentication is off" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "SECURITY.md" in warnings[0]


# -- authentication (items 8, 10) ------------------------------------------------------------


@pytest.mark.parametrize(("given", "missing"), [("USER", "PASS"), ("PASS", "USER")])
def test_half_configured_basic_auth_refuses_to_start(monkeypatch, tmp_path, given, missing):
    monkeypatch.setenv("PRELABEL_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv(f"PRELABEL_BASIC_AUTH_{given}", "x")
    with pytest.raises(ConfigError, match=f"BASIC_AUTH_{given} is set but .*BASIC_AUTH_{missing}"):
        load_settings(CoreSettings)


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode("ü:p".encode()).decode(),  # valid base64 of UTF-8
        "Basic w7w6cA==ü",  # not ASCII
        "Basic " + base64.b64encode(b"\xff\xfe:p").decode(),  # not UTF-8 inside
    ],
)
def test_odd_basic_credentials_are_401_not_500(make_app, ls_request, header):
    client = make_app(basic_auth_user="u", basic_auth_pass="p").test_client()
    response = client.post(
        "/setup",
        json=ls_request("setup"),
        headers={"Authorization": header.encode().decode("latin-1")},
    )
    assert response.status_code == 401


# -- logs (item 11) --------------------------------------------------------------------------


def test_a_newline_from_a_request_cannot_forge_a_log_line(make_app, ls_request):
    formatter = _OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Webhook %r: %s", None, None)
    record.args = ("A", "evil\nCRITICAL forged line\r")
    assert formatter.format(record) == "INFO Webhook 'A': evil\\nCRITICAL forged line\\r"


@pytest.mark.parametrize("name", ["pwd", "passwd", "session", "sessionid", "jwt", "password"])
def test_secret_query_parameters_are_masked(name):
    assert safe_url(f"https://h/x?{name}=hunter2&page=2") == f"https://h/x?{name}=***&page=2"


def test_label_studios_error_detail_never_carries_the_token(loopback):
    key = "a" * 40  # a legacy token, echoed back by a misbehaving LS
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJl"

    def ls(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("403 Forbidden", [("Content-Type", "application/json")])
        return [f'{{"detail": "Token {key} invalid; also {jwt}\\nforged"}}'.encode()]

    client = LabelStudioClient(loopback(ls), key)
    with pytest.raises(Exception) as err:
        client.request("GET", "/api/projects/1")
    text = str(err.value)
    assert key not in text and jwt not in text and "***" in text and "\n" not in text
    client.close()


def test_reprs_keep_secrets_out(tmp_path):
    settings = CoreSettings(model_dir=tmp_path, api_token="tok-secret", basic_auth_user="u",
                            basic_auth_pass="pw-secret")  # fmt: skip
    assert "tok-secret" not in repr(settings) and "pw-secret" not in repr(settings)
    assert httpx.URL("http://u:p@h/").host == "h"  # safe_url's premise
    assert safe_url("http://u:p@h/x") == "http://h/x"


@pytest.mark.parametrize("name", ["media-cache/ab/x.pt", "projects/1_2/data/x.pth", "tmp/w/x.pt"])
def test_weights_are_never_read_from_what_prelabel_writes(tmp_path, name):
    # A task URL ending in .pt lands in the media cache under a name anyone can compute, and
    # weight files are unpickled: a label config's model path must not reach it.
    from prelabel.errors import BackendLoadError
    from prelabel.vision.weights import locate_weights

    with pytest.raises(BackendLoadError, match="never weights"):
        locate_weights(name, tmp_path)
    assert locate_weights("weights/x.pt", tmp_path) == tmp_path.resolve() / "weights" / "x.pt"
