"""Connections to media hosts that nobody named: public addresses only.

``PRELABEL_MEDIA_ALLOW_HOSTS=*`` (or ``*.example.com``) and the presigned URLs Label Studio
redirects to name no host in particular, so they must not reach this machine, its private
network or a cloud metadata service (169.254.169.254). The check sits in the connection
itself: the host is resolved once, every address it resolves to is checked, and the socket
connects to a checked address. A name that resolves to a public address when checked and to
a private one a moment later (DNS rebinding) therefore gets nowhere. Hosts named explicitly
in the allowlist connect as usual.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AddressRefused", "guarded_transport", "is_public"]

#: ``socket.getaddrinfo``'s signature (a seam for tests).
Resolver = Callable[..., list[tuple[Any, ...]]]


class AddressRefused(Exception):
    """A host that was not named resolves to an address that is not public."""

    def __init__(self, host: str, addresses: Iterable[str]) -> None:
        self.host = host
        self.addresses = list(addresses)
        super().__init__(f"{host} resolves to {', '.join(self.addresses) or 'nothing'}")


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local…)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PublicOnly(httpcore.SyncBackend):
    """httpcore's socket backend, connecting to public addresses unless the host is named."""

    def __init__(self, named: Callable[[str, int], bool], resolve: Resolver) -> None:
        self.named = named
        self.resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.named(host, port):
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            infos = self.resolve(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        refused = [a for a in addresses if not is_public(a)]
        if refused or not addresses:
            raise AddressRefused(host, refused)
        error: Exception | None = None
        for address in addresses:  # the checked address, never a second lookup
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


def guarded_transport(
    named: Callable[[str, int], bool], *, resolve: Resolver = socket.getaddrinfo
) -> httpx.HTTPTransport:
    """An httpx transport whose connections to hosts not ``named`` reach public addresses only.

    Proxies from the environment are not used for it: a proxy would connect wherever it
    is told, past the check.
    """
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its pool without a way to pass a network backend; same settings, ours.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=_PublicOnly(named, resolve),
    )
    return transport
