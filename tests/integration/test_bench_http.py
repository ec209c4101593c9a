"""The load simulator's HTTP/1.1 client against a raw asyncio server that answers exactly what each
test scripts: keep-alive reuse, a server closing idle connections, chunked and gzip bodies, and the
failures a player must tell apart."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from revenge.loadtest.http import HttpClient, HttpError, Origin

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads request heads (and Content-Length bodies); ``handler`` writes the answer and says
    whether to keep the connection. Counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                self.requests.append(head)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.bodies.append(await reader.readexactly(length) if length else b"")
                if not await self.handler(head, reader, writer):
                    return
        finally:
            writer.close()


Serve = Callable[[Handler], Awaitable[tuple[RawServer, str]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[RawServer, str]:
        raw = RawServer(handler)
        server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return raw, f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_keep_alive_reuses_one_connection(serve: Serve) -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"segment-bytes", "Content-Type: audio/mp4"))
        await writer.drain()
        return True

    raw, url = await serve(handler)
    client = HttpClient(headers={"User-Agent": "t"})
    for _ in range(5):
        response = await client.request("GET", url + "/a/segment1.m4s?t=x")
        assert (response.status, response.body) == (200, b"segment-bytes")
    await client.aclose()
    assert raw.connections == 1 and len(raw.requests) == 5
    first = raw.requests[0].decode()
    assert first.startswith("GET /a/segment1.m4s?t=x HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{url.rsplit(':', 1)[1]}" in first and "User-Agent: t" in first


async def test_an_idle_connection_closed_by_the_server_is_replaced(serve: Serve) -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}"))
        await writer.drain()
        return False  # close after every answer, without saying so (as an idle timeout does)

    raw, url = await serve(handler)
    client = HttpClient()
    for _ in range(3):
        response = await client.request("POST", url + "/hb", json={"position_seconds": 1.5})
        assert response.status == 200 and response.json() == {}
        await asyncio.sleep(0.05)  # let the close arrive, as it would between heartbeats
    await client.aclose()
    assert raw.connections == 3
    assert raw.bodies == [b'{"position_seconds":1.5}'] * 3
    assert b"Content-Type: application/json" in raw.requests[0]


async def test_a_close_racing_the_reuse_is_retried_once(serve: Serve) -> None:
    """The server reads the second request on a kept connection and closes without a byte: the
    client retries on a fresh connection instead of failing (what browsers do for idempotent reuse)."""
    served = 0

    async def handler(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        nonlocal served
        served += 1
        if served == 2:
            return False  # drop it unanswered
        writer.write(answer(b"ok"))
        await writer.drain()
        return True

    raw, url = await serve(handler)
    client = HttpClient()
    assert (await client.request("GET", url + "/1")).body == b"ok"
    assert (await client.request("GET", url + "/2")).body == b"ok"
    await client.aclose()
    assert raw.connections == 2 and served == 3


async def test_chunked_gzip_and_connection_close_bodies(serve: Serve) -> None:
    text = b"#EXTM3U\n" + b"#EXTINF:5.99102,\nsegment0.m4s\n" * 200
    packed = gzip.compress(text)

    async def handler(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        path = head.split(b" ")[1]
        if path == b"/chunked":
            half = len(packed) // 2
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
            for part in (packed[:half], packed[half:]):
                writer.write(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n")
            writer.write(b"0\r\nX-Trailer: 1\r\n\r\n")
            await writer.drain()
            return True
        if path == b"/until-close":
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + text)
            await writer.drain()
            return False
        writer.write(answer(b"", status="204 No Content"))
        await writer.drain()
        return True

    raw, url = await serve(handler)
    client = HttpClient()
    assert (await client.request("GET", url + "/chunked")).body == text
    assert (await client.request("DELETE", url + "/empty")).status == 204
    assert (await client.request("GET", url + "/until-close")).body == text
    assert raw.connections == 1
    assert (await client.request("GET", url + "/chunked")).body == text
    await client.aclose()
    assert b"Accept-Encoding: gzip" in raw.requests[0]
    assert raw.connections == 2  # a body delimited by the close cannot be followed on its connection


async def test_failures_are_typed(serve: Serve) -> None:
    async def slow(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def truncated(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        return False

    async def garbage(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        return False

    client = HttpClient(timeout=0.3)
    # Bound but never listening, and held: refused for sure (a port found free and let go could be
    # taken by another process before the connect).
    with socket.socket() as unheard, pytest.raises(HttpError) as refused:
        unheard.bind(("127.0.0.1", 0))
        await client.request("GET", f"http://127.0.0.1:{unheard.getsockname()[1]}/")
    assert refused.value.kind == "connect"
    _, url = await serve(slow)
    with pytest.raises(HttpError) as late:
        await client.request("GET", url + "/")
    assert late.value.kind == "timeout"
    _, url = await serve(truncated)
    with pytest.raises(HttpError) as cut:
        await client.request("GET", url + "/")
    assert cut.value.kind == "protocol"
    _, url = await serve(garbage)
    with pytest.raises(HttpError) as bad:
        await client.request("GET", url + "/")
    assert bad.value.kind == "protocol"
    await client.aclose()


def test_origins() -> None:
    assert Origin.of("http://example.org/x").host_header == "example.org"
    assert Origin.of("https://example.org:8443/x") == Origin("https", "example.org", 8443)
    assert Origin.of("http://[::1]:7700/").host_header == "[::1]:7700"
    with pytest.raises(ValueError):
        Origin.of("ftp://example.org/")
