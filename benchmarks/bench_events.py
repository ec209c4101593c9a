"""Live events (issue 16): idle event streams held by one server, and progress → event latency.

1. Idle: ``--idle`` streams (default 5000, spread over 100 users, one device each) opened on one
   ``revenge serve`` child process: its RSS before and after (growth per stream) and its CPU over
   ``--idle-seconds`` with all of them open (heartbeats included).
2. Latency: ``--streams`` streams open (default 1000: 100 users × 10 devices) and ``--rate`` progress
   PUTs per second (default 200) from a writer device of a random user: the time from sending the PUT
   to the event arriving on the first of that user's streams, p50/p95/p99, for the embedded store and
   for a Redis store (a real ``redis-server``, ``appendfsync always``). The goal is p95 ≤ 50 ms.
   200 writes/s are many players each reporting every few seconds, not one player 200 times a second:
   the writes come from 64 writer devices in turn, as a device repeating itself within
   ``events_progress_window_ms`` is coalesced by design (its newest position at the window's end).

The client is one asyncio process (raw HTTP/1.1 for the streams and for the writes, 32 keep-alive
connections) sharing the machine with the server (and Redis); its own CPU is reported. Data dirs go to
tmpfs by default (``--work``): the disk's fsync on a shared box is not what this measures.

    .venv/bin/python benchmarks/bench_events.py [--idle 5000] [--streams 1000] [--rate 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import add_user, free_port  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402
from tests.redisfix import running_redis  # noqa: E402

START_TIMEOUT_S = 120.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def server(work: Path, library: Path, store: str) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update(REVENGE_LOG_LEVEL="warning", REVENGE_STORE=store, REVENGE_LIBRARY=str(library),
               REVENGE_STORE_DURABILITY="required")
    log = work / "server.log"
    with open(log, "wb") as fh:
        cmd = [sys.executable, "-m", "revenge", "serve", "--data-dir", str(work / "data"),
               "--port", str(port)]
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=fh,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up")
            with contextlib.suppress(httpx.TransportError):
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if r.status_code == 200 and not r.json()["scan"].get("running"):
                    break
            time.sleep(0.1)
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Streams:
    """Raw SSE connections; ``on_progress(user, position_ms)`` sees each progress event."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tasks: list[asyncio.Task[None]] = []
        self.arrivals: dict[tuple[int, int], float] = {}
        self.ready = 0
        self.refused = 0
        self.refusal = ""

    async def open(self, user: int, key: str, device: str) -> None:
        for attempt in range(5):  # a 503 (store busy) is retried, as a client would
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"GET /api/v1/events?device_id={device} HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {key}\r\n\r\n".encode())
            try:
                await reader.readuntil(b"event: ready")
                break
            except asyncio.IncompleteReadError as exc:
                writer.close()
                self.refused += 1
                self.refusal = self.refusal or exc.partial.decode(errors="replace")[-200:]
                if attempt == 4:
                    raise RuntimeError(exc.partial[:300]) from None
                await asyncio.sleep(0.5)
        self.ready += 1
        self.tasks.append(asyncio.create_task(self._read(user, reader, writer)))

    async def _read(self, user: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"data: {") and b'"position_ms"' in line:
                    now = time.perf_counter()
                    position = orjson.loads(line[6:])["position_ms"]
                    self.arrivals.setdefault((user, position), now)
        finally:
            writer.close()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def open_streams(streams: Streams, keys: list[str], count: int, devices_per_user: int) -> None:
    pending = [(n % len(keys), f"d{n // len(keys)}") for n in range(count)]
    assert devices_per_user * len(keys) >= count
    for start in range(0, len(pending), 200):
        await asyncio.gather(*(streams.open(u, keys[u], d) for u, d in pending[start:start + 200]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def idle(port: int, srv: Server, keys: list[str], count: int, seconds: float) -> dict[str, Any]:
    before = srv.rss_mib()
    streams = Streams(port)
    started = time.perf_counter()
    await open_streams(streams, keys, count, count // len(keys) + 1)
    opened_s = time.perf_counter() - started
    await asyncio.sleep(2)
    after = srv.rss_mib()
    cpu0, t0 = srv.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (srv.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    await streams.close()
    return {"streams": streams.ready, "open_seconds": round(opened_s, 1), "rss_before_mib": round(before, 1),
            "rss_after_mib": round(after, 1), "rss_per_stream_kib": round((after - before) * 1024 / count, 1),
            "idle_cpu_percent": round(cpu * 100, 1)}


async def latency(port: int, srv: Server, keys: list[str], items: list[str], count: int, rate: float,
                  seconds: float) -> dict[str, Any]:
    streams = Streams(port)
    await open_streams(streams, keys, count, 10)
    sent: dict[tuple[int, int], float] = {}
    answered: dict[tuple[int, int], float] = {}
    errors = 0
    rng = random.Random(16)
    jobs: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()

    async def writer_connection() -> None:
        """One keep-alive connection writing PUTs one after the other (raw HTTP/1.1: httpx's own CPU
        per request would be measured otherwise)."""
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (job := await jobs.get()) is not None:
            user, position = job
            body = orjson.dumps({"position_seconds": position / 1000, "duration_seconds": 1200,
                                 "device_id": f"writer{position % 64}",
                                 "client_ts": time.time_ns() // 1_000_000})
            sent[job] = time.perf_counter()
            writer.write(f"PUT /api/v1/playback/progress/{rng.choice(items)} HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {keys[user]}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            await reader.readexactly(length)
            answered[job] = time.perf_counter()
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                errors += 1
        writer.close()

    connections = [asyncio.create_task(writer_connection()) for _ in range(32)]
    cpu0, t0 = srv.cpu_seconds(), time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        delay = t0 + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        n += 1
        jobs.put_nowait((rng.randrange(len(keys)), 1000 + n))
    for _ in connections:
        jobs.put_nowait(None)
    await asyncio.gather(*connections)
    await asyncio.sleep(1.0)
    cpu = (srv.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    await streams.close()
    lat = [(streams.arrivals[k] - t) * 1000 for k, t in sent.items() if k in streams.arrivals]
    put = [(answered[k] - t) * 1000 for k, t in sent.items() if k in answered]
    # The event leaves before the PUT's answer (the hook runs when the update is applied): the event's
    # lead over the answer shows the fan-out is not what the latency is made of.
    lead = [(answered[k] - streams.arrivals[k]) * 1000 for k in sent
            if k in answered and k in streams.arrivals]
    return {"streams": streams.ready, "refused_opens": streams.refused,
            "refusal": streams.refusal, "writes": len(sent), "errors": errors,
            "delivered": len(lat),
            "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(percentile(lat, 0.95), 1),
            "p99_ms": round(percentile(lat, 0.99), 1), "put_p50_ms": round(statistics.median(put), 1),
            "put_p95_ms": round(percentile(put, 0.95), 1),
            "event_before_answer_p50_ms": round(statistics.median(lead), 1),
            "server_cpu_percent": round(cpu * 100, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                        help="where the data dirs go (default: tmpfs, so a shared disk's fsync is not "
                             "what is measured)")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the client holds every stream too
    results: dict[str, Any] = {"open_file_limit": hard}
    with tempfile.TemporaryDirectory(prefix="bench-events-", dir=args.work) as tmp:
        base = Path(tmp)
        library = base / "music"
        for n in range(20):
            write_audio(library / f"t{n}.flac", seconds=60, rate=8000, channels=1, kind="silence",
                        tags={"title": f"T{n}"})
        for store in args.stores.split(","):
            work = base / store
            keys = [add_user(work / "data", f"u{n}") for n in range(args.users)]
            with contextlib.ExitStack() as stack:
                url = "sqlite"
                if store == "redis":
                    url = stack.enter_context(running_redis(base / "redis")).url
                srv = stack.enter_context(server(work, library, url))
                r = httpx.get(f"http://127.0.0.1:{srv.port}/api/v1/items?limit=100",
                              headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10)
                items = [i["id"] for i in r.json()["items"]]
                client0 = time.process_time()
                entry: dict[str, Any] = {}
                if store == "sqlite" and args.idle:
                    entry["idle"] = asyncio.run(idle(srv.port, srv, keys, args.idle, args.idle_seconds))
                    print(store, "idle", entry["idle"], flush=True)
                entry["latency"] = asyncio.run(latency(srv.port, srv, keys, items, args.streams, args.rate,
                                                       args.seconds))
                entry["client_cpu_seconds"] = round(time.process_time() - client0, 1)
                print(store, "latency", entry["latency"], flush=True)
                results[store] = entry
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
