"""A stalled event client over real HTTP: its socket takes no more bytes (a tiny receive buffer, never
read), yet the writer's changes are all answered and the user's other device gets every event; when
the stalled client reads again it finds ``resync`` (too slow) and the end of its stream.

The stalled socket holds at most the kernel's send buffer (``tcp_wmem``'s maximum), its own small
receive buffer and the transport's write buffer: the test writes until the other device has received
more than that, so the stalled stream must have fallen behind by then, whatever the machine."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.integration.test_events_http import make_env, running, stream
from tests.sse import SseStream

MARGIN_BYTES = 1 << 20  # the transport's write buffer and in-flight frames, generously
RCVBUF = 4096


def kernel_send_buffer_max() -> int:
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def stalled_stream(url: str, headers: dict[str, str], device: str) -> socket.socket:
    """An event stream whose client reads its first bytes (status and ``ready``) and then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # before connecting: the window
    sock.connect((host, int(port)))
    auth = headers["Authorization"]
    sock.sendall(f"GET /api/v1/events?device_id={device} HTTP/1.1\r\nHost: {host}\r\n"
                 f"Authorization: {auth}\r\n\r\n".encode())
    got = b""
    while b"event: ready" not in got:
        chunk = sock.recv(1024)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    parts = []
    while chunk := sock.recv(1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def received_bytes(s: SseStream) -> int:
    return sum(len(str(e.data)) for e in s.events)


def test_a_stalled_client_blocks_neither_the_writer_nor_the_others_and_is_told_to_resync(
        tmp_path: Path) -> None:
    # A long heartbeat gives a long send timeout: the stalled stream ends by falling behind, not by it.
    env = make_env(tmp_path, None, events_client_buffer=8, events_heartbeat_seconds=30)
    bound = kernel_send_buffer_max() + 2 * RCVBUF + MARGIN_BYTES
    with running(env) as (live, items), stream(live, env.alice, "phone") as phone:
        stalled = stalled_stream(live.url, env.alice, "speaker")
        try:
            entries = [items[n % len(items)] for n in range(500)]  # a queue event of ~10 KB
            version = httpx.get(live.url + "/api/v1/queue", headers=env.alice, timeout=10).json()["version"]
            writes = 0
            with httpx.Client(timeout=30) as client:
                while received_bytes(phone) <= bound:
                    response = client.put(live.url + "/api/v1/queue", headers=env.alice,
                                          json={"version": version, "device_id": "laptop",
                                                "items": entries[writes % 7:] + entries[:writes % 7]})
                    assert response.status_code == 200, response.text
                    version = response.json()["version"]
                    writes += 1
                    phone.wait_for(lambda s, n=writes: sum(e.type == "queue" for e in s.events) == n)
            # Every write was answered, and the phone had every one of them, while the speaker's
            # client had not read a byte since its stream opened.
            queue_events = [e for e in phone.events if e.type == "queue"]
            assert [e.data["version"] for e in queue_events][-1] == version and len(queue_events) == writes
            text = read_to_end(stalled)
        finally:
            stalled.close()
    assert text.count(b"event: queue") < writes
    tail = text.rstrip(b"\r\n0").rsplit(b"event: ", 1)[-1]
    assert tail.startswith(b"resync") and b'"reason":"too_slow"' in tail, text[-300:]
