"""Suite-wide rules for every test directory (tests/ and each backend's tests/)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

# torch's OpenMP threads sleep rather than spin while waiting, as in the processes the
# `prelabel` command starts (prelabel.threads): on a busy machine spinning threads make
# torch code on every core ten times slower. Set before any test module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _loopback(host: object) -> bool:
    if host in ("localhost", "", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: only "localhost" is known to stay on this machine


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every test sends traffic to loopback only: other connections fail, and fail the test.

    SSRF refusals are tested by refusing before connecting; this proves no test (and no
    library under test) reaches a real address. Child processes are not covered.
    """
    attempts: list[object] = []
    real, real_ex = socket.socket.connect, socket.socket.connect_ex

    def outside(sock: socket.socket, address: Any) -> bool:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(address)
            return True
        return False

    def connect(sock: socket.socket, address: Any) -> None:
        if outside(sock, address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address}")
        real(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        return errno.ECONNREFUSED if outside(sock, address) else real_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert not attempts, f"a test tried to connect to {attempts}"
