"""A small HTTP/1.1 client over asyncio streams: keep-alive, Content-Length and chunked bodies, gzip.

Why not httpx: the load simulator runs thousands of players in one process on the same cores as the
server it measures, and every client-side microsecond is taken from the server. This client does just
what a player does: GET and small JSON POSTs, one request per connection at a time, idle connections
reused per origin and reopened when the server closed them (uvicorn closes idle keep-alive
connections after 5 s, shorter than a player's pause between segments at real-time pace).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_HEADER_BYTES = 64 * 1024
_NO_BODY_STATUSES = {204, 304}


class HttpError(Exception):
    """The exchange failed below HTTP: ``kind`` is connect, timeout, closed or protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, parts.port or default)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: int = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def stale(self) -> bool:
        return self.reader.at_eof() or self.writer.is_closing()


def _target(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


@dataclass
class HttpClient:
    timeout: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    max_idle_per_origin: int = 2
    _idle: dict[Origin, list[_Connection]] = field(default_factory=dict)
    _ssl: ssl.SSLContext | None = None

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      json: Any = None) -> Response:
        """One exchange. Raises :class:`HttpError`; any HTTP status is a :class:`Response`."""
        origin = Origin.of(url)
        body = orjson.dumps(json) if json is not None else b""
        head = self._head(method, origin, _target(url), headers, body if json is not None else None)
        try:
            async with asyncio.timeout(self.timeout):
                conn = self._take_idle(origin)
                if conn is not None:
                    try:
                        return await self._exchange(conn, origin, method, head, body)
                    except HttpError as exc:
                        # The server may close an idle connection just as we reuse it: retry once,
                        # on a fresh connection, when nothing at all came back.
                        if exc.kind != "closed":
                            raise
                conn = await self._connect(origin)
                return await self._exchange(conn, origin, method, head, body)
        except TimeoutError:
            raise HttpError("timeout", f"{method} {url} took over {self.timeout:g} s") from None

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _head(self, method: str, origin: Origin, target: str, extra: dict[str, str] | None,
              body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}", "Accept-Encoding: gzip"]
        lines.extend(f"{k}: {v}" for k, v in self.headers.items())
        if extra:
            lines.extend(f"{k}: {v}" for k, v in extra.items())
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take_idle(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        while conns:
            conn = conns.pop()
            if not conn.stale:
                return conn
            conn.close()
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        conns = self._idle.setdefault(origin, [])
        if len(conns) < self.max_idle_per_origin:
            conns.append(conn)
        else:
            conn.close()

    async def _connect(self, origin: Origin) -> _Connection:
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            reader, writer = await asyncio.open_connection(origin.host, origin.port, ssl=context,
                                                           limit=MAX_HEADER_BYTES)
        except OSError as exc:
            raise HttpError("connect", f"{origin.host_header}: {exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, origin: Origin, method: str, head: bytes,
                        body: bytes) -> Response:
        try:
            conn.writer.write(head + body if body else head)
            status, headers, keep = await self._read_head(conn)
            if method == "HEAD" or status in _NO_BODY_STATUSES or 100 <= status < 200:
                data = b""
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                data = await self._read_chunked(conn.reader)
            elif "content-length" in headers:
                data = await conn.reader.readexactly(int(headers["content-length"]))
            else:
                data = await conn.reader.read()  # delimited by the server closing the connection
                keep = False
        except HttpError:
            conn.close()
            raise
        except asyncio.IncompleteReadError as exc:
            conn.close()
            raise HttpError("protocol", f"connection closed mid-body ({len(exc.partial)} bytes)") from None
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            conn.close()
            raise HttpError("protocol", str(exc) or type(exc).__name__) from None
        except BaseException:  # cancelled or timed out mid-exchange: the connection is unusable
            conn.close()
            raise
        if headers.get("content-encoding", "").lower() == "gzip":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                conn.close()
                raise HttpError("protocol", f"bad gzip body: {exc}") from None
        conn.used += 1
        if keep:
            self._give_back(origin, conn)
        else:
            conn.close()
        return Response(status, headers, data)

    @staticmethod
    async def _read_head(conn: _Connection) -> tuple[int, dict[str, str], bool]:
        try:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise HttpError("closed", "the server closed the connection before answering") from None
            raise HttpError("protocol", "connection closed inside the response head") from None
        except ConnectionError as exc:
            if conn.used:
                raise HttpError("closed", str(exc)) from None
            raise
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise HttpError("protocol", f"bad status line {lines[0][:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = version == "HTTP/1.1" and "close" not in connection
        return status, headers, keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
