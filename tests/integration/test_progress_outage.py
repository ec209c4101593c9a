"""Store outages and durability, against real stores: a frozen redis-server (SIGSTOP) with many writers,
SQLite's write lock held by another connection, redis-servers that are and are not durable. One fake only
for what a real store cannot be made to do on demand: answer slowly but surely."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
import redis

from revenge.config import load_settings
from revenge.errors import StoreUnavailable
from revenge.progress.batcher import ProgressBatcher
from revenge.progress.durability import StoreNotDurable
from revenge.progress.guard import StoreGuard
from revenge.progress.model import DEFAULT_POLICIES, ProgressState, ProgressUpdate
from revenge.progress.service import ProgressService
from revenge.progress.store_dragonfly import DragonflyStore
from revenge.progress.store_sqlite import SqliteStore
from tests.live import add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, redis_server, running_redis  # noqa: F401  (fixture)
from tests.waits import until

S = 1000
T0 = 1_700_000_000_000
RECOVERY_TIMEOUT_S = 60.0  # a hang must fail, a slow shared machine must not
# Scheduling slack on a loaded 2-core machine; without the circuit the waits below are many times longer.
MARGIN_S = 1.0


def upd(i: int, user: str = "1", item: str = "e" * 16) -> ProgressUpdate:
    return ProgressUpdate(user_id=user, item_id=item, item_type="episode", duration_ms=3_600 * S,
                          position_ms=i * S % (3_600 * S), event="progress", device_id="phone",
                          event_ts_ms=T0 + i, received_ms=T0 + i)


def store_lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "revenge.progress" and words in r.getMessage()]


async def wait_until_written(service: ProgressService, i: int) -> ProgressState:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        try:
            return await service.update(upd(i))
        except StoreUnavailable:
            assert time.monotonic() < deadline, "writes did not succeed again after the store came back"
            await asyncio.sleep(0.05)  # pacing between attempts, not a wait for a state


# --- a frozen Redis: every write answered 503 in time, fast while down, back without a restart ---------

async def test_frozen_redis_answers_every_write_in_time_then_recovers(
        redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    timeout = 0.5
    settings = load_settings(None, env={}, data_dir=tmp_path, store=redis_server.url,
                             store_timeout_seconds=timeout, progress_batch_max=16)
    bound = timeout + settings.progress_batch_window_ms / 1000 + MARGIN_S
    service = await ProgressService.open(settings)
    writers, freeze_s = 300, 1.5
    waits: list[float] = []
    errors: list[str] = []
    frozen = asyncio.Event()
    thawed = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def writer(n: int) -> None:
        i = n * 10_000
        while not thawed.is_set():
            i += 1
            started = loop.time()
            try:
                await service.update(upd(i, user=str(n)))
            except StoreUnavailable as exc:
                waits.append(loop.time() - started)
                errors.append(str(exc))
                await asyncio.sleep(0.01)  # a client's pause before it retries
            else:
                if frozen.is_set():
                    return  # written while frozen: only possible before the freeze took hold
                await asyncio.sleep(0.01)
        await wait_until_written(service, i + 1)

    async def chaos() -> None:
        assert redis_server.process is not None
        await asyncio.sleep(0.2)  # let the writers get going (pacing, not a wait for a state)
        caplog.set_level(logging.INFO, logger="revenge.progress")
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        frozen.set()
        try:
            # Wait until the circuit is open (the first batch timed out), then check that reads fail
            # at once too: with the store's own message, not after a timeout.
            guard = service.guard
            assert guard is not None
            await until(lambda: guard.is_down, "the circuit to open on the frozen store", RECOVERY_TIMEOUT_S)
            for read in (service.get("1", "e" * 16), service.continue_listening("1", None, 20)):
                with pytest.raises(StoreUnavailable, match="progress store is down"):
                    await read
            await asyncio.sleep(freeze_s)
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        thawed.set()

    try:
        await asyncio.gather(chaos(), *(writer(n) for n in range(writers)))
        assert (await service.get("1", "e" * 16)) is not None  # reads work again too
    finally:
        await service.close()

    assert len(waits) >= writers, "the freeze went unnoticed: the test proved nothing"
    assert max(waits) <= bound, f"a write waited {max(waits):.2f} s for its 503 (bound {bound:.2f} s)"
    # Most 503s came from the open circuit, without touching the store (and so without queueing).
    fast = sum("is down" in e for e in errors)
    assert fast > len(errors) / 2, (fast, len(errors))
    # One line when it went down (with the cause), one when it came back; none per request.
    down = store_lines(caplog, "store down")
    assert len(down) == 1 and ("no answer" in down[0] or "Timeout" in down[0]), down
    assert len(store_lines(caplog, "up again")) == 1


async def test_frozen_redis_through_http_is_503_with_retry_after_in_time(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """The same through a live app: concurrent PUTs and GETs during the freeze all get 503 + Retry-After
    within the bound (one batch of 4 at a time: without the circuit the last would wait 15 timeouts)."""
    write_audio(tmp_path / "pods" / "show" / "ep.flac", seconds=60, rate=8000, channels=1, kind="silence")
    key = add_user(tmp_path / "data", "alice")
    timeout = 0.5
    settings = settings_for(tmp_path / "data", podcasts=(tmp_path / "pods",), store=redis_server.url,
                            store_timeout_seconds=timeout, progress_batch_max=4)
    bound = timeout + settings.progress_batch_window_ms / 1000 + MARGIN_S
    assert redis_server.process is not None
    with live_server(settings) as live:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as client:
            (item,) = [i["id"] for i in (await client.get("/api/v1/items?type=episode")).json()["items"]]
            path = f"/api/v1/playback/progress/{item}"

            async def timed_put(n: int) -> tuple[float, httpx.Response]:
                started = time.monotonic()
                body = {"position_seconds": n % 60, "event": "progress", "device_id": f"d{n}"}
                response = await client.put(path, json=body)
                return time.monotonic() - started, response

            assert (await timed_put(1))[1].status_code == 200
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            try:
                answers = await asyncio.gather(*(timed_put(n) for n in range(60)))
                later = await asyncio.gather(*(timed_put(n) for n in range(20)), client.get(path))
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
            for waited, response in answers + list(later[:-1]):  # type: ignore[operator]
                assert response.status_code == 503 and response.headers["Retry-After"] == "1"
                assert waited <= bound, f"a PUT waited {waited:.2f} s for its 503 (bound {bound:.2f} s)"
            read = later[-1]
            assert isinstance(read, httpx.Response) and read.status_code == 503
            deadline = time.monotonic() + RECOVERY_TIMEOUT_S
            while (await timed_put(2))[1].status_code != 200:
                assert time.monotonic() < deadline, "writes did not succeed again after SIGCONT"
                await asyncio.sleep(0.05)  # pacing between attempts


# --- SQLite: a held write lock opens the circuit; the probe needs the write lock too -----------------

async def test_sqlite_write_lock_opens_the_circuit_until_it_is_released(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="revenge.progress")
    path = tmp_path / "progress.db"
    store = SqliteStore(path, busy_timeout_ms=100)
    await store.open()
    guard = StoreGuard(store.check, timeout_seconds=2.0)
    batcher = ProgressBatcher(store, batch_max=8, window_ms=1, queue_max=1000, guard=guard)
    batcher.start()
    service = ProgressService(store, batcher, DEFAULT_POLICIES, guard=guard)
    try:
        await service.update(upd(1))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="database is locked"):
                await service.update(upd(2))
            assert guard.is_down
            for _ in range(50):  # while down: refused at once, never queued
                with pytest.raises(StoreUnavailable, match=r"progress store is down: .*locked"):
                    await service.update(upd(3))
            assert batcher.queued == 0 and batcher.stats.rejected == 50
            replay = await service.update_many([upd(i) for i in range(10, 15)])  # an offline replay
            assert all(isinstance(r, StoreUnavailable) and "is down" in str(r) for r in replay)
            with pytest.raises(StoreUnavailable, match="is down"):
                await service.mark_played("1", "e" * 16, "episode", 3_600 * S, True)
            # /healthz's ping: down too, though the database still answers reads.
            with pytest.raises(StoreUnavailable, match="is down"):
                await service.ping()
        finally:
            other.execute("ROLLBACK")
            other.close()
        state = await wait_until_written(service, 4)
        assert state.position_ms == 4 * S
    finally:
        await service.close()
    assert len(store_lines(caplog, "store down")) == 1
    assert len(store_lines(caplog, "up again")) == 1


# --- a store that answers, but slowly: a deep queue still gets its answers in time -----------------

class SlowStore:
    """Applies every batch, each after ``delay`` seconds (a slow disk; no real store does it on demand)."""

    def __init__(self, inner: SqliteStore, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        await asyncio.sleep(self.delay)
        return await self.inner.apply_batch(updates)

    async def check(self) -> object:
        return await self.inner.check()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "progress.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_updates_queued_behind_a_slow_store_get_503_at_their_limit(sqlite_store: SqliteStore) -> None:
    slow = SlowStore(sqlite_store, delay=0.3)
    timeout = 0.5
    guard = StoreGuard(slow.check, timeout_seconds=timeout)
    batcher = ProgressBatcher(slow, batch_max=4, window_ms=0, queue_max=1000, guard=guard)  # type: ignore[arg-type]
    batcher.start()
    loop = asyncio.get_running_loop()

    async def timed(i: int) -> tuple[float, ProgressState | BaseException]:
        started = loop.time()
        try:
            outcome: ProgressState | BaseException = await batcher.submit(upd(i, user=str(i)))
        except StoreUnavailable as exc:
            outcome = exc
        return loop.time() - started, outcome

    try:
        # 80 updates, 4 per 0.3 s batch: the last would wait 6 s without the limit.
        results = await asyncio.gather(*(timed(i) for i in range(80)))
    finally:
        await batcher.close()
    assert max(w for w, _ in results) <= timeout + MARGIN_S
    applied = [o for _, o in results if isinstance(o, ProgressState)]
    refused = [o for _, o in results if isinstance(o, StoreUnavailable)]
    assert len(applied) >= 4 and len(refused) >= 40
    assert all("gave no answer within 0.5 s" in str(e) for e in refused)
    assert batcher.stats.expired == len(refused)
    assert not guard.is_down  # slow is not down: the store answered every batch


# --- durability: refused unless durable, or the operator accepts the loss ----------------------------

async def test_a_redis_without_append_only_file_is_refused_at_startup(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with running_redis(tmp_path / "redis", extra_args=("--appendonly", "no")) as server:
        settings = load_settings(None, env={}, data_dir=tmp_path, store=server.url, progress_journal=False)
        with pytest.raises(StoreNotDurable, match="appendonly no") as refused:
            await ProgressService.open(settings)
        assert 'store_durability = "accept_loss"' in str(refused.value)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "revenge.progress"]
        assert [r.getMessage() for r in errors] == [str(refused.value)]

        accepted = await ProgressService.open(load_settings(None, env={}, data_dir=tmp_path, store=server.url,
                                                            store_durability="accept_loss",
                                                            progress_journal=False))
        try:
            assert accepted.store.durability is not None and accepted.store.durability.level == "none"
            (state,) = await accepted.update_many([upd(1)])
            assert isinstance(state, ProgressState)
        finally:
            await accepted.close()
        assert store_lines(caplog, "acknowledged writes may be lost")


async def test_everysec_is_refused_always_is_accepted(tmp_path: Path) -> None:
    with running_redis(tmp_path / "everysec", extra_args=("--appendfsync", "everysec")) as server:
        store = DragonflyStore(server.url, load_settings(None, env={}, data_dir=tmp_path))
        with pytest.raises(StoreNotDurable, match="appendfsync everysec"):
            await store.open()
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    with running_redis(tmp_path / "always", extra_args=durable) as server:
        store = DragonflyStore(server.url, load_settings(None, env={}, data_dir=tmp_path))
        await store.open()
        try:
            assert store.durability is not None and store.durability.level == "fsync_always"
            assert store.durability.server.startswith("redis ")
        finally:
            await store.close()


async def test_durability_is_checked_again_on_reconnect(redis_server: RedisServer,  # noqa: F811
                                                         tmp_path: Path) -> None:
    """A server that comes back without its append-only file (here: turned off, scripts flushed, as after
    a restart with another config) is refused until it is durable again; the store needs no reopen."""
    settings = load_settings(None, env={}, data_dir=tmp_path, store=redis_server.url,
                             store_timeout_seconds=1.0, progress_journal=False)
    service = await ProgressService.open(settings)
    try:
        await service.update(upd(1))
        with redis.Redis.from_url(redis_server.url) as client:
            client.config_set("appendonly", "no")
            client.script_flush()
        with pytest.raises(StoreNotDurable, match="appendonly no"):
            await service.update(upd(2))
        assert service.guard is not None and service.guard.is_down
        with pytest.raises(StoreUnavailable, match=r"is down: .*appendonly no"):
            await service.update(upd(3))
        with redis.Redis.from_url(redis_server.url) as client:
            client.config_set("appendonly", "yes")
        state = await wait_until_written(service, 4)
        assert state.version >= 2 and service.store.durability is not None
        assert service.store.durability.level == "fsync_always"
    finally:
        await service.close()
