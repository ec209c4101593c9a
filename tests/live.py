"""A real uvicorn server on a free loopback port, in a background thread, for integration tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from revenge.app import create_app
from revenge.config import Settings, load_settings
from revenge.security.keys import UserStore
from revenge.server import http_limits, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: no environment, a private data dir, everything else as given."""
    return load_settings(None, env={}, data_dir=data_dir, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test, when imported


def add_user(data_dir: Path, name: str) -> str:
    """Create a user in ``data_dir`` and return its API key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    users = UserStore(data_dir / "users.db")
    try:
        return users.add_user(name)[1]
    finally:
        users.close()


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server


@contextlib.contextmanager
def live_server(settings: Settings, *, wait_scan: bool = True, timeout: float = 60.0) -> Iterator[LiveServer]:
    """Run ``create_app(settings)`` under uvicorn (uvloop + httptools) until the block ends."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The same uvicorn configuration and HTTP guard as `revenge serve`, with the limits of ``settings``.
    config = uvicorn_config(create_app(settings), http_limits(settings), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    live = LiveServer(f"http://127.0.0.1:{port}", settings, server)
    try:
        if wait_scan:
            wait_for_scan(live, deadline)
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_for_scan(live: LiveServer, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        body = httpx.get(live.url + "/healthz", timeout=10).json()
        if not body.get("scan", {}).get("running"):
            return
        time.sleep(0.05)
    raise RuntimeError("library scan did not finish in time")
