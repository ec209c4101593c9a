"""A podcast host for the tests, on a free loopback port: serves feeds and enclosures from memory the
way real hosts do (ETag and Last-Modified with 304s, gzip for feeds, Range with 206 unless If-Range
names another version), records every
request, and misbehaves on demand (404, a body cut short, a Content-Length that lies)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.live import free_port


@dataclass
class Resource:
    body: bytes
    content_type: str
    # ok | truncate (half, then close) | lie (Content-Length past the body) | redirect:<url>
    # | slow (half, the rest once ``gate`` is set)
    mode: str = "ok"
    etag: str = ""
    last_modified: str = ""
    gate: threading.Event = field(default_factory=threading.Event)  # mode "slow": the rest after set()


@dataclass
class Hit:
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class FeedHost:
    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.hits: list[Hit] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()

    def put(self, path: str, body: bytes, content_type: str = "audio/mpeg", mode: str = "ok") -> str:
        tag = hashlib.sha256(body).hexdigest()[:16]
        with self._lock:
            self.resources[path] = Resource(body, content_type, mode, f'"{tag}"', formatdate(usegmt=True))
        return self.url + path

    def hits_of(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    @contextlib.contextmanager
    def running(self) -> Iterator[FeedHost]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                with host._lock:
                    host.hits.append(Hit(self.path, status, dict(self.headers.items())))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with host._lock:
                    resource = host.resources.get(self.path)
                if resource is None:
                    self.answer(404, {"Content-Length": "9"}, b"not found")
                    return
                if resource.mode.startswith("redirect:"):
                    self.answer(302, {"Location": resource.mode[9:], "Content-Length": "0"})
                    return
                validators = {"ETag": resource.etag, "Last-Modified": resource.last_modified}
                if self.headers.get("If-None-Match") == resource.etag or (
                    self.headers.get("If-None-Match") is None
                    and self.headers.get("If-Modified-Since") == resource.last_modified
                ):
                    self.answer(304, validators)
                    return
                body, headers = (
                    resource.body,
                    {"Content-Type": resource.content_type, **validators, "Accept-Ranges": "bytes"},
                )
                status = 200
                wanted = self.headers.get("Range", "")
                if_range = self.headers.get("If-Range")
                current = if_range is None or if_range in (resource.etag, resource.last_modified)
                if wanted.startswith("bytes=") and wanted.endswith("-") and resource.mode == "ok" and current:
                    start = int(wanted[6:-1])
                    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    body, status = body[start:], 206
                elif "gzip" in self.headers.get("Accept-Encoding", "") and "xml" in resource.content_type:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                if resource.mode == "truncate":
                    headers["Content-Length"] = str(len(body))
                    body = body[: len(body) // 2]
                    self.close_connection = True
                elif resource.mode == "lie":
                    headers["Content-Length"] = str(len(body) + 10_000)
                    self.close_connection = True
                else:
                    headers["Content-Length"] = str(len(body))
                if resource.mode == "slow":
                    self.answer(status, headers, body[: len(body) // 2])
                    self.wfile.flush()
                    resource.gate.wait(timeout=60)
                    self.wfile.write(body[len(body) // 2 :])
                    return
                self.answer(status, headers, body)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def rss(title: str, episodes: list[dict[str, str]], image: str = "") -> bytes:
    """A feed: each episode ``{title, guid, date (RFC 822), url, type?, length?, extra?}``; ``image``
    the show's picture URL (as ``<itunes:image href>`` and ``<image><url>``)."""
    art = f'<itunes:image href="{image}"/><image><url>{image}</url></image>' if image else ""
    items = "".join(
        f"<item><title>{e['title']}</title><guid>{e['guid']}</guid><pubDate>{e['date']}</pubDate>"
        f'<enclosure url="{e["url"]}" type="{e.get("type", "audio/mpeg")}" length="{e.get("length", "0")}"/>'
        f"{e.get('extra', '')}</item>"
        for e in episodes
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        f'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        f'xmlns:podcast="https://podcastindex.org/namespace/1.0" '
        f'xmlns:psc="http://podlove.org/simple-chapters"><channel><title>{title}</title>'
        f"<description>A test show</description>{art}{items}</channel></rss>"
    ).encode()
