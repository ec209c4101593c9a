"""Progress updates: HTTP PUT throughput and latency per store, store-level batching, batch settings.

Three measurements (issue 4), all in one run so the figures are side by side on the same machine:

1. HTTP: ``PUT /api/v1/playback/progress/{id}`` through uvicorn (``revenge serve`` child processes) with
   the embedded SQLite store and with the Dragonfly/Redis store (a real ``redis-server`` with
   ``appendonly yes``, ``appendfsync always``) without and with the progress journal, and with the
   journal on a snapshot-only ``redis-server`` (Dragonfly's persistence), against a bare endpoint run the
   same way (uvicorn's settings, the GC threshold: ``revenge.server``) that parses the same JSON and
   answers ``{}``. The servers run side by side; each round measures each of them in turn (rotating the
   order), and the table gives medians over rounds of throughput and of the p50/p99 latency. The client
   keeps many requests in flight (``--connections``) over keep-alive connections, so the group-commit
   batcher has company to batch. Two scenarios: ``listeners`` (the headline; each connection a listener
   of its own, ``--users`` changes how many users they are) and ``one_user`` (every connection a device
   of one user, eight devices per item: a batch then touches few keys, which flatters the store).
2. Store level: ``DragonflyStore.apply_batch`` of ``--batch`` updates (one pipeline of EVALSHAs) in a
   loop, vs ``redis-benchmark -P 100 -t set`` on the same Redis; the SQLite store's figure alongside.
3. Batch window x batch size: the Redis-store HTTP figure for a small grid of
   ``progress_batch_window_ms`` x ``progress_batch_max``.

The client is one asyncio process (uvloop) speaking raw HTTP/1.1; it shares the cores with the servers
and Redis, and its CPU time is reported so a run where the client was the bottleneck shows it.

    .venv/bin/python benchmarks/bench_progress.py [--quick] [--out bench-results/progress.json]
    .venv/bin/python benchmarks/bench_progress.py --quick --min-redis-ratio 0.7   # a CI guard
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from revenge.config import load_settings  # noqa: E402
from revenge.progress.model import ProgressUpdate  # noqa: E402
from revenge.progress.store_dragonfly import DragonflyStore  # noqa: E402
from revenge.progress.store_sqlite import SqliteStore  # noqa: E402
from tests.live import add_user  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402
from tests.redisfix import SNAPSHOTS_ONLY, RedisServer, running_redis  # noqa: E402

PUT_PATH = "/api/v1/playback/progress/{}"
EPISODE_SECONDS = 1200
START_TIMEOUT_S = 120.0


# --- servers -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_app() -> Any:
    """The baseline: same path, same JSON parsed, ``{}`` answered; no auth, no store."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from revenge.web.responses import JSONResponse

    async def put(request: Request) -> Response:
        orjson.loads(await request.body())
        return JSONResponse({})

    return Starlette(routes=[Route(PUT_PATH.format("{item_id}"), put, methods=["PUT"])])


def serve_bare(port: int) -> None:
    from revenge import server

    # Run exactly as `revenge serve` runs (uvicorn's settings, the garbage collector's threshold).
    server.run(bare_app(), "127.0.0.1", port, "warning")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(name: str, work: Path, podcasts: Path | None, env_extra: dict[str, str]) -> Iterator[Server]:
    """``revenge serve`` (or, with ``podcasts=None``, the bare endpoint) as a child process."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update({"REVENGE_LOG_LEVEL": "warning", **env_extra})
    log = work / f"{name}.log"
    if podcasts is None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "serve-bare", "--port", str(port)]
    else:
        env["REVENGE_PODCASTS"] = str(podcasts)
        cmd = [sys.executable, "-m", "revenge", "serve", "--data-dir", str(work / "data"),
               "--port", str(port)]
    with open(log, "wb") as fh:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=fh,
                                   stderr=subprocess.STDOUT)
    s = Server(name, process, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = "/openapi.json" if podcasts is None else "/healthz"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come up")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2)
                if podcasts is None or (r.status_code == 200 and not r.json()["scan"].get("running")):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield s
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_library(base: Path, episodes: int) -> Path:
    podcasts = base / "podcasts"
    for n in range(episodes):
        # Silence at 8 kHz mono FLAC: 20 minutes in a few KB, probed exactly.
        write_audio(podcasts / "show" / f"ep{n:03d}.flac", seconds=EPISODE_SECONDS, rate=8000, channels=1,
                    kind="silence", tags={"title": f"Episode {n}"})
    return podcasts


def prepare_data(work: Path, users: int) -> list[str]:
    """``users`` users in ``work/data``; their API keys."""
    return [add_user(work / "data", f"bench{n}") for n in range(users)]


def item_ids(port: int, key: str) -> list[str]:
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/items?type=episode&limit=100",
                  headers={"Authorization": f"Bearer {key}"}, timeout=10)
    r.raise_for_status()
    return sorted(i["id"] for i in r.json()["items"])


# --- the HTTP load generator -------------------------------------------------------------------------

@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float  # measured (after the warm-up)
    latencies_ms: list[float] = field(repr=False)
    client_cpu_s: float  # CPU seconds over the warm-up and the measured seconds
    server_cpu_s: float
    wall_s: float  # the warm-up and the measured seconds

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu(self) -> float:
        """The server's cores in use (1.0 = one core busy all along)."""
        return self.server_cpu_s / self.wall_s

    @property
    def client_cpu(self) -> float:
        return self.client_cpu_s / self.wall_s

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _worker(port: int, keys: list[str], items: list[str], worker: int, stop_at: float,
                  record_from: float, latencies: list[float], counters: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Connection w is a device of user w mod users, playing item w mod items.
    key = keys[worker % len(keys)]
    item = items[worker % len(items)]
    head = (f"PUT {PUT_PATH.format(item)} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    second = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            second = (second + 1) % (EPISODE_SECONDS - 60)
            body = orjson.dumps({"position_seconds": second, "duration_seconds": EPISODE_SECONDS,
                                 "event": "progress", "device_id": f"dev{worker}",
                                 "client_ts": time.time_ns() // 1_000_000})
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            headers = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)content-length: *(\d+)", headers)
            if match is None:
                raise RuntimeError(f"no Content-Length in {headers!r}")
            await reader.readexactly(int(match.group(1)))
            done = time.perf_counter()
            if now >= record_from:
                latencies.append((done - now) * 1000.0)
                if not headers.startswith(b"HTTP/1.1 200"):
                    counters[1] += 1
                counters[0] += 1
    finally:
        writer.close()


async def _load(port: int, keys: list[str], items: list[str], connections: int, warmup_s: float,
                seconds: float) -> tuple[int, int, list[float]]:
    start = time.perf_counter()
    record_from = start + warmup_s
    stop_at = record_from + seconds
    latencies: list[float] = []
    counters = [0, 0]
    await asyncio.gather(*(_worker(port, keys, items, w, stop_at, record_from, latencies, counters)
                           for w in range(connections)))
    return counters[0], counters[1], latencies


def run_load(srv: Server, keys: list[str], items: list[str], connections: int, warmup_s: float,
             seconds: float) -> LoadResult:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        runner = asyncio.run
    cpu0 = time.process_time()
    srv_cpu0 = srv.cpu_seconds()
    requests, errors, latencies = runner(_load(srv.port, keys, items, connections, warmup_s, seconds))
    return LoadResult(requests, errors, seconds, latencies, time.process_time() - cpu0,
                      srv.cpu_seconds() - srv_cpu0, warmup_s + seconds)


# --- store level -------------------------------------------------------------------------------------

def _updates(count: int, round_no: int, items: int = 500, users: int = 50) -> list[ProgressUpdate]:
    base = 1_700_000_000_000 + round_no * 10_000_000
    return [ProgressUpdate(user_id=str(i % users), item_id=f"{i % items:016d}".translate(str.maketrans(
                "0123456789", "abcdefghij")), item_type="episode", duration_ms=EPISODE_SECONDS * 1000,
            position_ms=(round_no * count + i) * 37 % (EPISODE_SECONDS * 1000), event="progress",
            device_id=f"dev{i % 7}", event_ts_ms=base + i, received_ms=base + i) for i in range(count)]


async def _store_rate(store: Any, batch: int, seconds: float) -> float:
    await store.open()
    try:
        done = 0
        round_no = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            round_no += 1
            await store.apply_batch(_updates(batch, round_no))
            done += batch
        return done / (time.perf_counter() - start)
    finally:
        await store.close()


def redis_benchmark_set(redis: RedisServer, requests: int) -> float:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise RuntimeError("redis-benchmark is not installed (Debian: redis-tools)")
    out = subprocess.run([binary, "-h", "127.0.0.1", "-p", str(redis.port), "-P", "100", "-t", "set",
                          "-n", str(requests), "-q"], capture_output=True, text=True, timeout=600, check=True)
    match = re.search(r"SET: ([\d.]+) requests per second", out.stdout)
    if match is None:
        raise RuntimeError(f"unexpected redis-benchmark output: {out.stdout!r}")
    return float(match.group(1))


# --- the run -----------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def http_comparison(work: Path, podcasts: Path, redis: RedisServer, snapshots: RedisServer,
                    args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each scenario (how the connections map to users, ``SCENARIO_TITLES``) against the same servers:
    scenario → endpoint → medians. ``redis`` is the AOF-always server without the progress journal,
    ``redis_journal`` the same server with it (its cost), ``snapshots_journal`` a snapshot-only server
    (Dragonfly's persistence) with it."""
    configs = {
        "bare": None,
        "sqlite": {"REVENGE_STORE": "sqlite"},
        "redis": {"REVENGE_STORE": redis.url, "REVENGE_PROGRESS_JOURNAL": "false"},
        "redis_journal": {"REVENGE_STORE": redis.url, "REVENGE_PROGRESS_JOURNAL": "true"},
        "snapshots_journal": {"REVENGE_STORE": snapshots.url, "REVENGE_PROGRESS_JOURNAL": "true"},
    }
    scenarios = {"listeners": args.users, "one_user": 1}
    out: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        keys: dict[str, list[str]] = {}
        for name, env in configs.items():
            sub = work / f"http-{name}"
            sub.mkdir()
            keys[name] = prepare_data(sub, max(scenarios.values())) if env is not None else ["none"]
            library = None if env is None else podcasts
            servers[name] = stack.enter_context(server(name, sub, library, env or {}))
        items = item_ids(servers["sqlite"].port, keys["sqlite"][0])
        order = list(configs)
        for scenario, users in scenarios.items():
            print(f" {scenario}: {args.connections} connections over {users} user(s)", flush=True)
            results: dict[str, list[LoadResult]] = {name: [] for name in configs}
            for r in range(args.rounds):
                for name in order[r % len(order):] + order[:r % len(order)]:
                    res = run_load(servers[name], keys[name][:users], items, args.connections, args.warmup,
                                   args.seconds)
                    results[name].append(res)
                    print(f"  round {r + 1} {name:>6}: {res.rate:8.0f} req/s  "
                          f"p50 {res.percentile(0.5):6.2f} ms  p99 {res.percentile(0.99):6.2f} ms  "
                          f"errors {res.errors}  (server cpu {res.server_cpu:.2f}, "
                          f"client cpu {res.client_cpu:.2f})", flush=True)
            out[scenario] = _http_summary(results, users)
    return out


def _http_summary(results: dict[str, list[LoadResult]], users: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"users": users}
    for name, runs in results.items():
        summary[name] = {
            "req_per_s": median([x.rate for x in runs]),
            "p50_ms": median([x.percentile(0.5) for x in runs]),
            "p99_ms": median([x.percentile(0.99) for x in runs]),
            "errors": sum(x.errors for x in runs),
            "server_cpu_per_s": median([x.server_cpu for x in runs]),
            "client_cpu_per_s": median([x.client_cpu for x in runs]),
            "rounds": [x.rate for x in runs],
        }
    for name in ("sqlite", "redis", "redis_journal", "snapshots_journal"):
        summary[name]["ratio_to_bare"] = summary[name]["req_per_s"] / summary["bare"]["req_per_s"]
    return summary


def store_level(work: Path, redis: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(None, env={}, data_dir=work / "store-level")
    redis_rates, sqlite_rates, set_rates = [], [], []
    for r in range(args.rounds):
        redis_rates.append(asyncio.run(_store_rate(DragonflyStore(redis.url, settings), args.batch,
                                                   args.store_seconds)))
        sqlite_rates.append(asyncio.run(_store_rate(SqliteStore(work / f"store-level-{r}.db"), args.batch,
                                                    args.store_seconds)))
        set_rates.append(redis_benchmark_set(redis, args.set_requests))
        print(f"  round {r + 1}: redis store {redis_rates[-1]:9.0f} updates/s   sqlite store "
              f"{sqlite_rates[-1]:9.0f} updates/s   redis-benchmark SET -P 100 {set_rates[-1]:10.0f}/s",
              flush=True)
    out = {
        "batch": args.batch,
        "redis_store_updates_per_s": median(redis_rates),
        "sqlite_store_updates_per_s": median(sqlite_rates),
        "redis_benchmark_set_per_s": median(set_rates),
    }
    out["redis_store_to_set_ratio"] = out["redis_store_updates_per_s"] / out["redis_benchmark_set_per_s"]
    return out


def batch_grid(work: Path, podcasts: Path, redis: RedisServer,
               args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for window in args.windows:
        for size in args.sizes:
            name = f"grid-w{window:g}-b{size}"
            sub = work / name
            sub.mkdir()
            keys = prepare_data(sub, args.users)
            env = {"REVENGE_STORE": redis.url, "REVENGE_PROGRESS_JOURNAL": "false",
                   "REVENGE_PROGRESS_BATCH_WINDOW_MS": str(window),
                   "REVENGE_PROGRESS_BATCH_MAX": str(size)}
            with server(name, sub, podcasts, env) as srv:
                items = item_ids(srv.port, keys[0])
                runs = [run_load(srv, keys, items, args.connections, args.warmup, args.seconds)
                        for _ in range(args.grid_rounds)]
            row = {"window_ms": window, "batch_max": size, "req_per_s": median([x.rate for x in runs]),
                   "p50_ms": median([x.percentile(0.5) for x in runs]),
                   "p99_ms": median([x.percentile(0.99) for x in runs]),
                   "errors": sum(x.errors for x in runs)}
            rows.append(row)
            print(f"  window {window:>4g} ms  batch_max {size:>4}: {row['req_per_s']:8.0f} req/s  "
                  f"p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms", flush=True)
    return rows


SCENARIO_TITLES = {
    "listeners": "one listener per connection, each its own user",
    "one_user": "one user, every connection one of its devices",
}


def report(http: dict[str, dict[str, Any]], store: dict[str, Any], grid: list[dict[str, Any]],
           args: argparse.Namespace) -> str:
    lines = []
    for scenario, table in http.items():
        lines += [
            f"HTTP PUT /api/v1/playback/progress/{{id}}, {SCENARIO_TITLES[scenario]}: {args.connections} "
            f"connections over {table['users']} user(s), {args.rounds} rounds of {args.seconds:g} s, medians",
            "",
            "| endpoint | req/s | vs bare | p50 ms | p99 ms | server CPU | client CPU | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in ("bare", "sqlite", "redis", "redis_journal", "snapshots_journal"):
            row = table[name]
            ratio = f"{row['ratio_to_bare']:.2f}" if "ratio_to_bare" in row else "1.00"
            lines.append(f"| {name} | {row['req_per_s']:.0f} | {ratio} | {row['p50_ms']:.2f} | "
                         f"{row['p99_ms']:.2f} | {row['server_cpu_per_s']:.2f} | "
                         f"{row['client_cpu_per_s']:.2f} | {row['errors']} |")
        lines.append("")
    lines += [
        f"Store level (batches of {store['batch']}, medians):",
        "",
        "| what | per second | ratio |",
        "|---|---:|---:|",
        f"| DragonflyStore.apply_batch (redis-server, AOF always) | "
        f"{store['redis_store_updates_per_s']:.0f} | {store['redis_store_to_set_ratio']:.3f} of SET |",
        f"| redis-benchmark -P 100 -t set (same server) | {store['redis_benchmark_set_per_s']:.0f} | 1 |",
        f"| SqliteStore.apply_batch (WAL, synchronous=FULL) | {store['sqlite_store_updates_per_s']:.0f} | |",
        "",
        f"Batch window x batch max (Redis store, HTTP, {args.connections} connections over "
        f"{args.users} user(s)):",
        "",
        "| window ms | batch max | req/s | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in grid:
        lines.append(f"| {row['window_ms']:g} | {row['batch_max']} | {row['req_per_s']:.0f} | "
                     f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    bare = sub.add_parser("serve-bare", help="(internal) run the bare endpoint")
    bare.add_argument("--port", type=int, required=True)
    parser.add_argument("--quick", action="store_true", help="short runs, small grid (CI guard)")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--users", type=int, default=None,
                        help="users of the listeners scenario and the grid (default: one per connection; "
                             "the one_user scenario always has one)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per HTTP run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--episodes", type=int, default=32, help="items in the generated library")
    parser.add_argument("--batch", type=int, default=512, help="store-level batch size")
    parser.add_argument("--min-redis-ratio", type=float, default=None,
                        help="exit 1 if the Redis store's HTTP throughput is below this fraction of bare")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "progress.json")
    args = parser.parse_args(argv)
    if args.command == "serve-bare":
        serve_bare(args.port)
        return 0
    args.users = args.users or args.connections
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.warmup = 0.5 if args.quick else 1.0
    args.store_seconds = 1.0 if args.quick else 3.0
    args.set_requests = 200_000 if args.quick else 1_000_000
    args.windows = (0.0, 2.0) if args.quick else (0.0, 2.0, 10.0)
    args.sizes = (512,) if args.quick else (16, 128, 512)
    args.grid_rounds = 1 if args.quick else 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))

    with tempfile.TemporaryDirectory(prefix="revenge-bench-progress-") as tmp:
        work = Path(tmp)
        print("generating the library…", flush=True)
        podcasts = make_library(work, args.episodes)
        with running_redis(work / "redis") as redis, \
                running_redis(work / "redis-snapshots", extra_args=SNAPSHOTS_ONLY) as snapshots:
            print("HTTP: bare vs SQLite store vs Redis store (journal off, on) vs snapshots + journal",
                  flush=True)
            http = http_comparison(work, podcasts, redis, snapshots, args)
            print("store level", flush=True)
            store = store_level(work, redis, args)
            print("batch window x batch max", flush=True)
            grid = batch_grid(work, podcasts, redis, args)
    text = report(http, store, grid, args)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({"http": http, "store": store, "grid": grid, "table": text,
                                       "quick": args.quick, "connections": args.connections,
                                       "cpus": os.cpu_count()}, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.out}")
    ratio = http["listeners"]["redis"]["ratio_to_bare"]
    if args.min_redis_ratio is not None and ratio < args.min_redis_ratio:
        print(f"FAIL: Redis store at {ratio:.2f} of bare < {args.min_redis_ratio}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
