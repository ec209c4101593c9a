"""A whole load run: pick items, optionally warm the cache, start N players on a ramp, watch the
server's CPU and memory, draw a progress bar, and hand the tally to :mod:`report`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlencode, urljoin, urlsplit

from revenge.loadtest import procstat
from revenge.loadtest.http import HttpClient, HttpError
from revenge.loadtest.listener import Listener, PlayerProfile, Tally, _Failed
from revenge.loadtest.report import ResourceUse, build_report

ITEMS_PAGE = 500
SAMPLE_SECONDS = 0.25  # loop-lag probe period; /proc is read every fourth probe
WARMERS = 2


class BenchError(Exception):
    """The run cannot start (bad URL, bad key, no items): the message says why."""


@dataclass(frozen=True)
class LoadConfig:
    url: str
    keys: tuple[str, ...]  # listeners take them in turn: each user has its own session cap
    listeners: int = 10
    duration: float = 60.0
    player: PlayerProfile = field(default_factory=PlayerProfile)
    seed: int = 1
    ramp: float | None = None  # seconds over which players start; None: min(10, duration / 4)
    item_type: str | None = "track"
    source_codec: str | None = None  # only items whose source has this codec (e.g. flac)
    item_ids: tuple[str, ...] = ()  # play these (shared by all players) instead of listing items
    shared: int | None = None  # None: a distinct item per player; K: all players share K items
    warm: bool = False  # fetch every segment of the items in play before the clock starts
    server_pid: int | None = None  # None: the process listening on the URL's port, when local
    # Servers behind ``url`` (a load balancer) whose /metrics counters the report gives per server, as
    # ``instance_counters``: of the measured run only (read after the warm-up and at the end)
    metrics_urls: tuple[str, ...] = ()
    show_progress: bool = True

    def __post_init__(self) -> None:
        if not self.keys:
            raise BenchError("at least one API key is needed (--key)")
        if self.listeners < 1 or self.duration <= 0:
            raise BenchError("listeners must be ≥ 1 and the duration positive")
        if self.shared is not None and self.shared < 1:
            raise BenchError("shared must be ≥ 1")

    @property
    def ramp_seconds(self) -> float:
        return self.ramp if self.ramp is not None else min(10.0, self.duration / 4)


def assign_items(ids: list[str], listeners: int, shared: int | None) -> list[list[str]]:
    """Each player's play order. Distinct: player i starts on item i and moves on by ``listeners``
    (no two players on one item while there are enough items). Shared: the first ``shared`` items,
    player i starting on item i mod ``shared``."""
    if not ids:
        raise BenchError("no items to play")
    if shared is not None:
        pool = ids[:shared]
        return [[pool[(i + k) % len(pool)] for k in range(len(pool))] for i in range(listeners)]
    rounds = max(1, len(ids) // listeners)
    return [[ids[(i + k * listeners) % len(ids)] for k in range(rounds)] for i in range(listeners)]


async def list_items(client: HttpClient, config: LoadConfig, wanted: int) -> list[str]:
    headers = {"Authorization": f"Bearer {config.keys[0]}"}
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < wanted:
        query: dict[str, str | int] = {"limit": ITEMS_PAGE}
        if config.item_type:
            query["type"] = config.item_type
        if cursor:
            query["cursor"] = cursor
        url = urljoin(config.url, "api/v1/items?" + urlencode(query))
        try:
            response = await client.request("GET", url, headers=headers)
        except HttpError as exc:
            raise BenchError(f"cannot reach {config.url}: {exc}") from None
        if response.status == 401:
            raise BenchError("the server refused the API key (401)")
        if response.status != 200:
            raise BenchError(f"GET /api/v1/items answered {response.status}: {response.body[:200]!r}")
        page = response.json()
        for item in page["items"]:
            if config.source_codec is None or item.get("codec") == config.source_codec:
                ids.append(item["id"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not ids:
        raise BenchError("the server lists no items" + (f" with source codec {config.source_codec}"
                                                        if config.source_codec else ""))
    return ids[:wanted]


async def server_counters(client: HttpClient, base_url: str) -> dict[str, float] | None:
    """The server's own counters (``/metrics``), if it exposes them: see :func:`parse_counters`."""
    try:
        response = await client.request("GET", urljoin(base_url, "metrics"))
    except HttpError:
        return None
    if response.status != 200:
        return None
    return parse_counters(response.body.decode("utf-8", "replace"))


# Prometheus series summed into one counter each: name prefix → our key ("{label}" takes the label).
_COUNTERS = (
    ("revenge_segment_requests_total{", "segments_{cache}"),  # hit, miss, inflight
    ("revenge_encode_seconds_count{", "encodes"),
    ("revenge_encode_seconds_sum{", "encode_seconds"),
    ("revenge_http_503_total{", "http_503"),
)


def parse_counters(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for prefix, key in _COUNTERS:
            if line.startswith(prefix):
                labels, _, value = line.partition("} ")
                if "{cache}" in key:
                    label = labels.split('cache="', 1)[1].split('"', 1)[0] if 'cache="' in labels else "?"
                    key = key.replace("{cache}", label)
                counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def counter_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {k: round(after[k] - before.get(k, 0.0), 6) for k in sorted(after)}


async def warm_up(config: LoadConfig, orders: list[list[str]], tally: Tally) -> int:
    """Fetch every segment of every item in play (the variant players will choose), so the run
    measures the cache. Marks those segments as seen: the run counts them as cached."""
    items = sorted({item for order in orders for item in order})
    queue: asyncio.Queue[str] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    scratch = Tally()
    fetched = 0

    async def warmer(n: int) -> None:
        nonlocal fetched
        listener = Listener(-1 - n, config.url, config.keys[0], [], config.player, scratch, random.Random(0))
        listener.device_id = f"bench-warm-{n}"
        try:
            while not queue.empty():
                item = queue.get_nowait()
                try:
                    session = await listener.start_session(item)
                    media = await listener.open_stream(urljoin(config.url, str(session["url"])))
                    for segment in media.segments:
                        await listener.segment(segment)
                        fetched += 1
                except _Failed:
                    continue
        finally:
            with contextlib.suppress(Exception):
                await listener.stop_session()
            await listener.client.aclose()

    await asyncio.gather(*(warmer(n) for n in range(WARMERS)))
    if scratch.error_count:
        raise BenchError(f"warm-up failed: {scratch.error_samples[:3]}")
    tally.seen |= scratch.seen
    return fetched


class Sampler:
    """Client event-loop lag every ``SAMPLE_SECONDS``, and the server's and this process's CPU and
    memory from ``/proc`` every fourth probe."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.lags: list[float] = []
        self.server = ResourceUse()
        self.client = ResourceUse()

    async def run(self) -> None:
        tick = 0
        while True:
            planned = time.perf_counter() + SAMPLE_SECONDS
            await asyncio.sleep(SAMPLE_SECONDS)
            self.lags.append(max(0.0, time.perf_counter() - planned))
            if tick % 4 == 0:
                self.sample(time.perf_counter())
            tick += 1

    def sample(self, now: float) -> None:
        with contextlib.suppress(OSError):
            self.client.add(now, procstat.sample(os.getpid()))
        if self.server_pid is not None:
            try:
                self.server.add(now, procstat.sample(self.server_pid))
            except OSError:
                self.server_pid = None  # gone


def find_server_pid(config: LoadConfig) -> int | None:
    if config.server_pid is not None:
        return config.server_pid
    parts = urlsplit(config.url)
    if parts.hostname is None or not procstat.is_local_host(parts.hostname):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return procstat.pid_listening_on(port)


def progress_line(tally: Tally, elapsed: float, duration: float, listeners: int, width: int = 24) -> str:
    done = min(1.0, elapsed / duration) if duration > 0 else 1.0
    filled = int(done * width)
    bar = "#" * filled + "." * (width - filled)
    return (f"[{bar}] {elapsed:5.0f}/{duration:.0f}s  players {tally.active}/{listeners}  "
            f"segments {tally.segments}  stalls {len(tally.stalls)}  503 {tally.busy}  "
            f"errors {tally.error_count}")


async def _progress(tally: Tally, started: float, config: LoadConfig, out: TextIO) -> None:
    try:
        while True:
            line = progress_line(tally, time.perf_counter() - started, config.duration, config.listeners)
            out.write("\r" + line[:200])
            out.flush()
            await asyncio.sleep(0.5)
    finally:
        out.write("\r" + " " * 200 + "\r")
        out.flush()


async def run_load(config: LoadConfig, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the load and return the report (see :func:`report.build_report`)."""
    client = HttpClient(timeout=config.player.timeout, headers={"User-Agent": "revenge-bench/1"})
    try:
        if config.item_ids:
            ids = list(config.item_ids)
            shared: int | None = len(ids)
        else:
            shared = config.shared
            wanted = shared if shared is not None else 2 * config.listeners
            ids = await list_items(client, config, wanted)
        orders = assign_items(ids, config.listeners, shared)
        distinct_items = len({order[0] for order in orders})
        tally = Tally()
        warmed = 0
        if config.warm:
            log(f"warming the cache: every segment of {len({i for o in orders for i in o})} item(s)…")
            warmed = await warm_up(config, orders, tally)
        counters_before = await server_counters(client, config.url)
        instances_before = [await server_counters(client, u) for u in config.metrics_urls]
    finally:
        await client.aclose()

    server_pid = find_server_pid(config)
    sampler = Sampler(server_pid)
    sampler.sample(time.perf_counter())
    sampler_task = asyncio.create_task(sampler.run())
    started = time.perf_counter()
    end_at = started + config.duration
    ramp = config.ramp_seconds
    rng = random.Random(config.seed)
    listeners = [
        Listener(n, config.url, config.keys[n % len(config.keys)], orders[n], config.player, tally,
                 random.Random(rng.getrandbits(64)))
        for n in range(config.listeners)
    ]
    tasks = [asyncio.create_task(listener.run(started + ramp * n / config.listeners, end_at))
             for n, listener in enumerate(listeners)]
    bar: asyncio.Task[None] | None = None
    if config.show_progress and sys.stderr.isatty():
        bar = asyncio.create_task(_progress(tally, started, config, sys.stderr))
    wall_started = time.time()
    try:
        _, pending = await asyncio.wait(tasks, timeout=config.duration + config.player.timeout + 15)
        for task in pending:  # players stuck beyond every timeout: say so rather than wait
            task.cancel()
            tally.error("player stuck", "a player was still running well after the end")
        if pending:
            await asyncio.wait(pending, timeout=5)
    finally:
        elapsed = time.perf_counter() - started
        for task in (bar, sampler_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    sampler.sample(time.perf_counter())
    client = HttpClient(timeout=config.player.timeout)
    try:
        counters_after = await server_counters(client, config.url)
        instances_after = [await server_counters(client, u) for u in config.metrics_urls]
    finally:
        await client.aclose()
    report = build_report(
        config=config_json(config, ramp, distinct_items, len(ids), warmed),
        tally=tally, elapsed=elapsed, started_at=wall_started, lags=sampler.lags,
        server=sampler.server if server_pid is not None else None, server_pid=server_pid,
        same_process=server_pid == os.getpid(), client=sampler.client,
        server_counters=counter_delta(counters_before, counters_after),
    )
    if config.metrics_urls:
        pairs = zip(config.metrics_urls, instances_before, instances_after, strict=True)
        report["instance_counters"] = {url: counter_delta(before, after) for url, before, after in pairs}
    return report


def config_json(config: LoadConfig, ramp: float, distinct_items: int, items: int,
                warmed: int) -> dict[str, Any]:
    p = config.player
    return {
        "url": config.url, "listeners": config.listeners, "duration_s": config.duration, "speed": p.speed,
        "seed": config.seed, "ramp_s": ramp, "buffer_segments": p.buffer, "start_buffer_s": p.start_buffer,
        "heartbeat_s": p.heartbeat_seconds,
        "seeks_per_minute": p.seeks_per_minute, "profile": p.profile, "codecs": list(p.codecs),
        "max_bitrate": p.max_bitrate, "item_type": config.item_type, "source_codec": config.source_codec,
        "items": "shared" if config.shared is not None or config.item_ids else "distinct",
        "items_in_play": items, "distinct_first_items": distinct_items, "warm": config.warm,
        "warm_segments": warmed, "keys": len(config.keys),
    }


def raise_fd_limit(listeners: int) -> int:
    """Raise this process's open-file limit toward what ``listeners`` players need (two connections
    each: API and media), as far as the hard limit allows; returns the soft limit now in force.
    Child processes started afterwards (a local server) inherit it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * listeners + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return int(soft)


def run(config: LoadConfig, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """:func:`run_load` on a fresh event loop (uvloop when installed: cheaper per request)."""
    limit = raise_fd_limit(config.listeners)
    if limit < 2 * config.listeners + 64:
        log(f"warning: {config.listeners} players need about {2 * config.listeners} open files; the limit "
            f"is {limit} (raise it with ulimit -n): expect connect errors")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(run_load(config, log))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_load(config, log))
