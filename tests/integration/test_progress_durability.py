"""Acknowledged means durable: a real server process (``python -m revenge serve``, SQLite store) under a
stream of concurrent PUTs is killed with SIGKILL; after a restart every acknowledged update is there."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import add_user, free_port
from tests.mediagen import write_audio

WORKERS = 8
KILL_AFTER_ACKS = 400  # acknowledged updates in total before the kill (the stream keeps going meanwhile)
START_TIMEOUT_S = 60.0
SECONDS = 600  # each episode; the stream stays far below it (positions advance 1 s per update)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str


@contextmanager
def serve(data: Path, podcasts: Path, headers: dict[str, str]) -> Iterator[Server]:
    """``revenge serve`` on a free port. The port is found free here and bound by the child later, so
    another process may take it first: the child then exits (address in use) and another port is
    tried; and a server is ours only if it knows our user's key, not merely answers on the port."""
    for _ in range(5):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
        env.update({"REVENGE_PODCASTS": str(podcasts), "REVENGE_LOG_LEVEL": "warning"})
        log_path = data.parent / f"server-{port}.log"
        with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall the server
            process = subprocess.Popen(
                [sys.executable, "-m", "revenge", "serve", "--data-dir", str(data), "--port", str(port)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            if _came_up(server, log_path, headers):
                yield server
                return
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
    raise RuntimeError("no free port stayed free long enough for the server to bind it")


def _came_up(server: Server, log_path: Path, headers: dict[str, str]) -> bool:
    """True once the server answers with its scan done; False if its port was taken."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            log = log_path.read_text(errors="replace")
            if "address already in use" in log.lower():
                return False
            raise RuntimeError(f"server exited: {log[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not come up")
        try:
            health = httpx.get(server.url + "/healthz", timeout=2)
            if (health.status_code == 200 and not health.json()["scan"].get("running")
                    and httpx.get(server.url + "/api/v1/items?limit=1", headers=headers,
                                  timeout=2).status_code == 200):
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)


async def stream(url: str, headers: dict[str, str], item_id: str, device: str, base_ts: int,
                 acked: dict[str, int], sent: dict[str, int], total: list[int]) -> None:
    """PUT positions 1, 2, 3 … s (with event times in the past, in order) until the server dies;
    remember the last position the server acknowledged and the last one sent."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        k = 0
        while True:
            k += 1
            sent[item_id] = k
            try:
                r = await client.put(f"/api/v1/playback/progress/{item_id}",
                                     json={"position_seconds": k, "event": "progress", "device_id": device,
                                           "client_ts": base_ts + k})
            except httpx.TransportError:
                return
            assert r.status_code == 200, r.text
            assert r.json()["position_seconds"] == k
            acked[item_id] = k
            total[0] += 1


@pytest.mark.slow
def test_acknowledged_updates_survive_sigkill(tmp_path: Path) -> None:
    podcasts = tmp_path / "podcasts"
    for i in range(WORKERS):
        write_audio(podcasts / f"ep{i}.flac", seconds=SECONDS, rate=8000, channels=1, kind="silence")
    data = tmp_path / "data"
    headers = {"Authorization": f"Bearer {add_user(data, 'alice')}"}
    base_ts = time.time_ns() // 1_000_000 - 3_600_000

    with serve(data, podcasts, headers) as server:
        items = httpx.get(server.url + "/api/v1/items", headers=headers, timeout=10).json()["items"]
        ids = sorted(i["id"] for i in items)
        assert len(ids) == WORKERS
        acked: dict[str, int] = {}
        sent: dict[str, int] = {}
        total = [0]

        async def run() -> None:
            workers = [asyncio.create_task(stream(server.url, headers, item, f"dev{n}", base_ts, acked, sent,
                                                  total))
                       for n, item in enumerate(ids)]
            deadline = time.monotonic() + 120
            while total[0] < KILL_AFTER_ACKS:
                assert time.monotonic() < deadline, f"only {total[0]} updates acknowledged"
                await asyncio.sleep(0.005)
                for w in workers:
                    if w.done():
                        w.result()  # surface a failed assertion instead of waiting forever
            server.process.send_signal(signal.SIGKILL)
            await asyncio.gather(*workers)

        asyncio.run(run())
        assert server.process.wait(timeout=30) == -signal.SIGKILL

    assert sum(acked.values()) >= KILL_AFTER_ACKS
    with serve(data, podcasts, headers) as server:
        for item in ids:
            state = httpx.get(server.url + f"/api/v1/playback/progress/{item}", headers=headers,
                              timeout=10).json()
            position = round(state["position_seconds"])
            # Everything acknowledged is there; at most the in-flight request beyond it was applied too.
            assert acked.get(item, 0) <= position <= sent.get(item, 0), (item, acked.get(item), state)
            assert state["version"] == position
            assert state["devices"][0]["position_seconds"] == position
        # The restarted server takes new updates.
        r = httpx.put(server.url + f"/api/v1/playback/progress/{ids[0]}", headers=headers, timeout=10,
                      json={"position_seconds": SECONDS - 1, "device_id": "dev0"})
        assert r.status_code == 200 and r.json()["position_seconds"] == SECONDS - 1
