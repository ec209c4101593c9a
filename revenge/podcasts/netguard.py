"""Outbound requests to URLs taken from feeds and users: only http(s), and (unless allowed) only to
public addresses, checked on every address a name resolves to and at every connection, so a redirect or
a DNS answer that changes between check and connect cannot reach the server's own network."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx


class UnsafeUrl(Exception):
    """The URL may not be fetched; the message says why."""


def check_url(url: str) -> str:
    """``url`` if it is an absolute http or https URL with a host (no credentials), else ``UnsafeUrl``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are fetched")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("URLs with credentials are not fetched")
    if port == 0:
        raise UnsafeUrl("port 0")
    return url


def address_allowed(address: str, allow_private: bool) -> bool:
    """A public unicast address (not private, loopback, link-local, shared, reserved, multicast,
    unspecified; an IPv4-mapped IPv6 address is judged as its IPv4); anything when ``allow_private``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


def refuse_addresses(host: str, addresses: Iterable[str], allow_private: bool) -> None:
    """``UnsafeUrl`` unless every one of ``addresses`` is allowed (one private answer is enough to refuse:
    a name that resolves to a public and a loopback address is not fetched)."""
    found = list(addresses)
    if not found:
        raise UnsafeUrl(f"{host} does not resolve")
    for address in found:
        if not address_allowed(address, allow_private):
            raise UnsafeUrl(f"{host} resolves to a non-public address ({address}): refused")


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses unless every address is allowed, and connects to the first
    address it checked (TLS still verifies the certificate against the host name)."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    # httpcore's interface names the parameter ``timeout`` (ASYNC109 does not apply to an override).
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        refuse_addresses(host, addresses, self._allow_private)
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(allow_private: bool, timeout: float, user_agent: str) -> httpx.AsyncClient:
    """An HTTP client whose every connection goes through the address check. Redirects are followed by
    the caller (``fetch``), which checks each hop's URL; proxies from the environment are ignored (a
    proxy would make the connection, not us)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    transport._pool._network_backend = _GuardedBackend(allow_private)  # httpcore's pool has no setter
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"},
    )
