"""The serving worker against real sockets: slow clients cost no thread (issue #13, item 2).

gunicorn runs :class:`~prelabel._server.buffering.BufferingWorker` (as ``prelabel serve``
does) with 2 threads and short limits, in its own process, on loopback. Timeouts below only
detect a hang (the old worker never answered); no test asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest

from prelabel._server.buffering import _chunked_end

SERVER = """
import sys
from prelabel._server.app import create_app
from prelabel._server.buffering import BufferingWorker
from prelabel._server.gunicorn import run_gunicorn
from prelabel.settings import CoreSettings
from prelabel.testing.reference import ReferenceBackend

BufferingWorker.read_timeout = 1.5
BufferingWorker.max_clients = 40
settings = CoreSettings(model_dir=sys.argv[2], label_studio_url=None, label_studio_api_key=None)
run_gunicorn(
    bind=f"127.0.0.1:{sys.argv[1]}", workers=1, threads=2, timeout=60,
    app_factory=lambda: create_app(ReferenceBackend(), settings, start_jobs=False),
    max_request_bytes=100_000,
)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("buffering")
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(port), str(tmp / "models")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (tmp / "server.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    yield url, port
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()


HALF_A_BODY = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 30
HALF_THE_HEADERS = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Le"


def _stalled(port: int, n: int, sent: bytes = HALF_A_BODY) -> list[socket.socket]:
    """``n`` connections that sent ``sent`` (part of a request) and stopped there."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for sock in socks:
        sock.sendall(sent)
    return socks


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on one connection and read until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if out.count(b"HTTP/1.1 ") >= data.count(b"HTTP/1.1\r\n") and out.endswith(b"}\n"):
                    break
        except TimeoutError:
            pass
        return out


def test_stalled_clients_hold_no_thread(served) -> None:
    url, port = served
    socks = _stalled(port, 15) + _stalled(port, 15, HALF_THE_HEADERS)  # 15 times the threads
    try:
        with httpx.Client(base_url=url, timeout=10) as client:  # 10 s only detects a hang
            for _ in range(5):
                health = client.get("/health").json()
                assert health["status"] == "UP", health
            body = {"project": "1.1", "schema": '<View><Text name="t" value="$t"/></View>'}
            assert client.post("/setup", json=body).status_code in (200, 422)
    finally:
        for sock in socks:
            sock.close()


def test_an_incomplete_request_gets_408_and_is_closed(served) -> None:
    _, port = served
    (sock,) = _stalled(port, 1)
    sock.settimeout(20)
    with sock:
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert sock.recv(1) == b""  # closed


def test_an_announced_body_over_the_limit_is_refused_unread(served) -> None:
    _, port = served
    answer = _raw(
        port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{", timeout=10
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer


def test_past_the_connection_limit_new_clients_get_a_fast_503(served) -> None:
    url, port = served
    socks = _stalled(port, 45)  # the limit is 40
    try:
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{url}/health")
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "too many connections" in response.json()["message"]
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_chunked_pipelined_and_kept_alive_requests_are_served_whole(served) -> None:
    _, port = served
    event = json.dumps({"action": "LABEL_LINK_CREATED"}).encode()
    chunked = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (event[:7], event[7:])
    )
    two = (
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n" + chunked + b"0\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = _raw(port, two)
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer
    assert b'"status":"ignored"' in answer and b'"status":"UP"' in answer


def test_a_client_expecting_100_continue_gets_it_before_sending_its_body(served) -> None:
    _, port = served
    body = json.dumps({"action": "LABEL_LINK_CREATED"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        while b'"ignored"' not in answer:
            answer += sock.recv(65536)
    assert b"HTTP/1.1 200 " in answer


@pytest.mark.parametrize(
    ("body", "complete"),
    [
        (b"5\r\nhello\r\n0\r\n\r\n", True),
        (b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", True),
        (b"5\r\nhel", False),
        (b"5\r\nhello\r\n0\r\n", False),
        (b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n", False),
        (b"", False),
    ],
)
def test_chunked_end(body: bytes, complete: bool) -> None:
    assert _chunked_end(bytearray(b"HEAD" + body), 4) == (len(body) + 4 if complete else None)
