"""Media fetches reach private addresses only when the host is named (issue #13, item 11).

``PRELABEL_MEDIA_ALLOW_HOSTS=*`` and Label Studio's presign redirects name no host, so they
reach public addresses only. Refusals happen after resolving and before connecting: the
suite's loopback guard (``conftest.py``) fails any test that connects elsewhere, and the
loopback servers here record that no request arrived.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from prelabel._ls.guard import AddressRefused, guarded_transport, is_public
from prelabel.errors import MediaError
from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


class Recorder:
    """A loopback WSGI app that counts requests and serves a fixed route table."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.routes: dict[str, Response] = {"/img.png": Response(PNG, content_type="image/png")}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.paths.append(request.path)
        response = self.routes.get(request.path, Response(status=404))
        return response(environ, start_response)


@pytest.fixture
def server(loopback) -> tuple[Recorder, str]:
    app = Recorder()
    return app, loopback(app)


def resolver(tmp_path: Path, **settings: Any) -> MediaResolver:
    settings.setdefault("label_studio_url", None)
    settings.setdefault("label_studio_api_key", None)
    return MediaResolver(CoreSettings(model_dir=tmp_path, **settings))


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_star_does_not_reach_this_machine(server, tmp_path: Path) -> None:
    app, url = server
    media = resolver(tmp_path, media_allow_hosts=["*"])
    with pytest.raises(MediaError, match=r"127\.0\.0\.1, which is not a public address") as err:
        media.read_bytes(f"{url}/img.png")
    assert "name it in PRELABEL_MEDIA_ALLOW_HOSTS" in str(err.value)
    assert app.paths == []  # refused before connecting
    named = resolver(tmp_path, media_allow_hosts=["*", "127.0.0.1"])
    assert named.read_bytes(f"{url}/img.png") == PNG  # named explicitly: allowed


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1:9000/bucket/x.png",
    ],
)
def test_star_does_not_reach_metadata_or_private_networks(url: str, tmp_path: Path) -> None:
    # The loopback guard would fail this test had a connection been attempted.
    with pytest.raises(MediaError, match="which is not a public address"):
        resolver(tmp_path, media_allow_hosts=["*"]).read_bytes(url)


def test_a_wildcard_domain_resolving_privately_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        seen.append(host)
        # One public and one private address: a name that could rebind is refused whole.
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    transport = guarded_transport(lambda host, port: False, resolve=resolve)
    with httpx.Client(transport=transport) as client, pytest.raises(AddressRefused) as err:
        client.get("http://media.example.com/a.png")
    assert seen == ["media.example.com"] and err.value.addresses == ["10.0.0.7"]


def test_a_named_host_connects_to_what_it_resolves_to(server) -> None:
    app, url = server
    port = int(url.rsplit(":", 1)[1])

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        raise AssertionError("a named host is not resolved by the guard")

    transport = guarded_transport(lambda host, p: (host, p) == ("127.0.0.1", port), resolve=resolve)
    with httpx.Client(transport=transport) as client:
        assert client.get(f"{url}/img.png").content == PNG
    assert app.paths == ["/img.png"]


def test_label_studio_may_not_redirect_to_an_unnamed_private_host(
    server, loopback, tmp_path: Path
) -> None:
    bucket, bucket_url = server
    presigned = f"{bucket_url}/img.png?X-Amz-Signature=abc"

    def fake_ls(environ: dict[str, Any], start_response: Any) -> Any:
        return Response(status=303, headers={"Location": presigned})(environ, start_response)

    ls_url = loopback(fake_ls)
    media = resolver(tmp_path, label_studio_url=ls_url, label_studio_api_key="0" * 40)
    with pytest.raises(MediaError, match="not a public address"):
        media.local_path("s3://bucket/img.png", task_id=1)
    assert bucket.paths == []
    named = resolver(
        tmp_path / "named", label_studio_url=ls_url, label_studio_api_key="0" * 40,
        media_allow_hosts=[bucket_url.removeprefix("http://")],
    )  # fmt: skip
    assert named.read_bytes("s3://bucket/img.png", task_id=1) == PNG
