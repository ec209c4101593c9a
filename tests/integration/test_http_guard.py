"""The HTTP guard over real sockets against a real uvicorn server (revenge/http_guard.py, issue 13):
header caps, timeouts for silent and slow clients, the connection cap, and streams that are never cut.

Timeouts are set short through the settings; the tests wait for the socket to be closed (with a
deadline), never for a fixed time. Sleeps only pace the slow clients being simulated."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from revenge.library.ids import item_id
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

DEADLINE = 20.0  # far beyond every timeout the tests set: only a server that never closes reaches it


@contextlib.contextmanager
def guarded(tmp_path: Path, **settings: object) -> Iterator[tuple[LiveServer, str]]:
    key = add_user(tmp_path / "data", "u")
    with live_server(make_settings(tmp_path / "data", **settings)) as live:
        yield live, key


def connect(live: LiveServer, **options: int) -> socket.socket:
    host, port = live.url.removeprefix("http://").split(":")
    sock = socket.socket()
    for name, value in options.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    sock.connect((host, int(port)))
    return sock


def read_until_closed(sock: socket.socket, deadline: float = DEADLINE) -> bytes:
    """Everything the server sends until it closes the connection; fails at the deadline."""
    sock.settimeout(deadline)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {deadline} s; got {b''.join(chunks)[:200]!r}")
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    sock.settimeout(DEADLINE)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def trickle(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> threading.Thread:
    """Send ``data`` one byte every ``every`` seconds from a thread, until the server hangs up."""
    def run() -> None:
        for byte in data:
            if stop.wait(every):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_silent_connection_is_closed(tmp_path: Path) -> None:
    with guarded(tmp_path, http_first_request_timeout_seconds=0.3) as (live, _), connect(live) as sock:
        assert read_until_closed(sock) == b""
        assert httpx.get(live.url + "/healthz").status_code == 200


def test_a_slow_loris_head_is_cut_with_408(tmp_path: Path) -> None:
    stop = threading.Event()
    with guarded(tmp_path, http_header_timeout_seconds=0.5) as (live, _), connect(live) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        thread = trickle(sock, b"X-Slow: " + b"a" * 1000, 0.1, stop)
        answer = read_until_closed(sock)
        stop.set()
        thread.join()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")


def test_the_head_timeout_applies_to_every_request_of_a_connection(tmp_path: Path) -> None:
    stop = threading.Event()
    with guarded(tmp_path, http_header_timeout_seconds=0.5) as (live, _), connect(live) as sock:
        for _ in range(3):  # whole requests on one connection, each well within the timeout
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        thread = trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000, 0.1, stop)
        answer = read_until_closed(sock)
        stop.set()
        thread.join()
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_at_one_byte_per_300_ms_is_cut_with_408(tmp_path: Path) -> None:
    body = b'{"updates": []}' + b" " * 985
    stop = threading.Event()
    with guarded(tmp_path, http_body_timeout_seconds=1.0) as (live, key), connect(live) as sock:
        sock.sendall(f"POST /api/v1/playback/progress:batch HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        started = time.monotonic()
        thread = trickle(sock, body, 0.3, stop)
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert elapsed < DEADLINE  # the body would take 300 s to arrive


def test_a_body_that_flows_is_served(tmp_path: Path) -> None:
    with guarded(tmp_path, http_body_timeout_seconds=0.3) as (live, key):
        response = httpx.post(live.url + "/api/v1/playback/progress:batch", json={"updates": []},
                              headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from the current RSS
    except OSError:
        return False
    return True


def _rss_peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def test_a_50_mb_header_gets_431_without_costing_memory(tmp_path: Path) -> None:
    chunk = b"a" * 65536
    with guarded(tmp_path) as (live, _), connect(live) as sock:
        assert httpx.get(live.url + "/healthz").status_code == 200  # warm
        measured = _reset_rss_peak()
        before = _rss_peak_kib()

        def send() -> None:
            with contextlib.suppress(OSError):  # the server hangs up before the 50 MB are through
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                for _ in range(50 * 16):
                    sock.sendall(chunk)
                sock.sendall(b"\r\n\r\n")

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        answer = read_until_closed(sock)
        thread.join(DEADLINE)
        after = _rss_peak_kib()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"headers_too_large" in answer
    if measured:  # the client's chunk is sent again and again: the process's growth is the server's
        assert after - before < 8 * 1024, f"peak RSS grew by {after - before} KiB"


def test_too_many_headers_get_431(tmp_path: Path) -> None:
    with guarded(tmp_path, http_max_headers=20) as (live, _), connect(live) as sock:
        headers = "".join(f"X-H{i}: v\r\n" for i in range(21))
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431 ") and b"too_many_headers" in answer
        fine = {f"X-H{i}": "v" for i in range(14)}  # httpx adds five of its own
        assert httpx.get(live.url + "/healthz", headers=fine).status_code == 200


def test_the_connection_cap_closes_new_connections_and_logs_once(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="revenge.http")
    with guarded(tmp_path, http_max_connections=8, http_first_request_timeout_seconds=3.0) as (live, _):
        idle = [connect(live) for _ in range(8)]
        try:
            # The server accepts them in order; the ninth and later are closed at once.
            for _ in range(3):
                with connect(live) as extra:
                    assert read_until_closed(extra, deadline=2.0) == b""
            refusals = [r for r in caplog.records if "closing new ones" in r.getMessage()]
            assert len(refusals) == 1
            for sock in idle:
                assert read_until_closed(sock) == b""  # the first-request timeout frees them
        finally:
            for sock in idle:
                sock.close()
        assert httpx.get(live.url + "/healthz").status_code == 200
        assert any("accepting connections again; 3 were refused" in r.getMessage() for r in caplog.records)


def test_a_stream_read_slowly_is_not_cut(tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_audio(music / "long.wav", seconds=3.0, rate=44_100, channels=2, kind="noise")
    data = (music / "long.wav").read_bytes()
    settings = {"library": (music,), "http_first_request_timeout_seconds": 0.2,
                "http_header_timeout_seconds": 0.2, "http_body_timeout_seconds": 0.2}
    with guarded(tmp_path, **settings) as (live, key), connect(live, SO_RCVBUF=8192) as sock:
        path = f"/api/v1/stream/{item_id('track', 'long.wav')}/direct"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                     "Connection: close\r\n\r\n".encode())
        received = bytearray()
        started = time.monotonic()
        while chunk := sock.recv(8192):
            received += chunk
            time.sleep(0.02)  # a slow reader: the response takes many times the timeouts above
        elapsed = time.monotonic() - started
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == data
    assert elapsed > 0.6, "the stream went too fast to show anything; slow the reader"
