"""The QueueStore contract (revenge/playback/queue_store.py) on both backends: the embedded SQLite store
on a temp file, and the Redis store against a real redis-server (tests/redisfix.py) with the key guard
on. Central: the write is a compare-and-set, so of two writers based on one version exactly one wins."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from revenge.config import load_settings
from revenge.errors import StoreUnavailable
from revenge.playback import queue as q
from revenge.playback.journaled import JournaledQueueStore
from revenge.playback.queue import EMPTY, Append, Next, Replace, Shuffle
from revenge.playback.queue_redis import RedisQueueStore, queue_key
from revenge.playback.queue_service import QueueConflict, QueueService
from revenge.playback.queue_sqlite import SqliteQueueStore
from revenge.playback.queue_store import QueueStore, open_queue_store
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

A, B, C = (c * 16 for c in "abc")


@dataclasses.dataclass
class Backend:
    name: str
    store: QueueStore
    make: Callable[[], QueueStore]  # another store on the same backend (another instance's view)
    server: RedisServer | None
    path: Path | None


@pytest.fixture(params=["sqlite", "redis", "journaled"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen = Backend("redis", RedisQueueStore(server.url, 2.0, key_guard=True),
                         lambda: RedisQueueStore(server.url, 2.0, key_guard=True), server, None)
    elif request.param == "journaled":
        server = request.getfixturevalue("redis_server")

        def journaled() -> QueueStore:
            return JournaledQueueStore(RedisQueueStore(server.url, 2.0, key_guard=True), tmp_path, 2.0)
        chosen = Backend("redis", journaled(), journaled, server, None)
    else:
        path = tmp_path / "queue.db"
        chosen = Backend("sqlite", SqliteQueueStore(path, busy_timeout_ms=200),
                         lambda: SqliteQueueStore(path, busy_timeout_ms=2000), None, path)
    await chosen.store.open()
    try:
        yield chosen
    finally:
        await chosen.store.close()


def test_the_factory_follows_settings_store(tmp_path: Path) -> None:
    assert isinstance(open_queue_store(load_settings(None, env={}, data_dir=tmp_path)), SqliteQueueStore)
    remote = load_settings(None, env={}, data_dir=tmp_path, store="redis://127.0.0.1:1/0")
    assert isinstance(open_queue_store(remote), JournaledQueueStore)
    unjournaled = load_settings(None, env={}, data_dir=tmp_path, store="redis://127.0.0.1:1/0",
                                progress_journal=False)
    assert isinstance(open_queue_store(unjournaled), RedisQueueStore)


async def test_an_unknown_user_has_the_empty_queue_and_writes_round_trip(backend: Backend) -> None:
    store = backend.store
    await store.ping()
    assert await store.get("1") == EMPTY
    first = q.change(EMPTY, [Replace((A, B, C)), Shuffle(9), Next()], "phone", 1000)
    assert await store.put("1", first, 0) is None
    assert await store.get("1") == first
    assert await store.get("2") == EMPTY  # per user
    second = q.change(first, [Append((A,))], "car", 2000)
    assert await store.put("1", second, 1) is None
    assert await store.get("1") == second


async def test_a_write_based_on_an_old_version_is_refused_with_the_stored_queue(backend: Backend) -> None:
    store = backend.store
    first = q.change(EMPTY, [Replace((A,))], "phone", 1)
    assert await store.put("1", first, 0) is None
    stale = q.change(EMPTY, [Replace((B,))], "car", 2)  # based on version 0 too
    assert await store.put("1", stale, 0) == first
    assert await store.put("1", q.change(first, [Append((C,))], "car", 3), 5) == first
    assert await store.get("1") == first


async def test_two_concurrent_writers_from_one_version_exactly_one_wins(backend: Backend) -> None:
    others = [backend.make() for _ in range(2)]
    for other in others:
        await other.open()
    try:
        services = [QueueService(other) for other in others]
        base = q.change(EMPTY, [Replace((A,))], "setup", 1)
        assert await backend.store.put("1", base, 0) is None
        for round_ in range(5):
            version = (await backend.store.get("1")).version
            results = await asyncio.gather(
                *(service.change("1", version, [Append((B if i else C,))], f"dev{i}", 10 + round_)
                  for i, service in enumerate(services)), return_exceptions=True)
            won = [r for r in results if isinstance(r, q.Queue)]
            lost = [r for r in results if isinstance(r, QueueConflict)]
            assert len(won) == 1 and len(lost) == 1, results
            assert lost[0].current == won[0] == await backend.store.get("1")
            assert won[0].version == version + 1
    finally:
        for other in others:
            await other.close()


async def test_outage_raises_store_unavailable_and_nothing_is_acknowledged(backend: Backend) -> None:
    store = backend.store
    first = q.change(EMPTY, [Replace((A,))], "phone", 1)
    assert await store.put("1", first, 0) is None
    if backend.server is not None:
        backend.server.stop(hard=True)
    else:
        assert backend.path is not None
        other = sqlite3.connect(backend.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the store's busy timeout
    try:
        with pytest.raises(StoreUnavailable):
            await store.put("1", q.change(first, [Append((B,))], "phone", 2), 1)
        if backend.server is not None:
            with pytest.raises(StoreUnavailable):
                await store.get("1")
    finally:
        if backend.server is not None:
            backend.server.start()  # same port, the AOF replayed
        else:
            other.execute("ROLLBACK")
            other.close()
    assert await store.get("1") == first  # recovered by itself; the failed write is not there
    assert await store.put("1", q.change(first, [Append((C,))], "phone", 3), 1) is None


async def test_a_restarted_store_keeps_the_queue(backend: Backend) -> None:
    queue = q.change(EMPTY, [Replace((A, B)), Next()], "phone", 1)
    assert await backend.store.put("1", queue, 0) is None
    await backend.store.close()
    if backend.server is not None:
        backend.server.restart(hard=True)  # kill -9: only what the AOF holds comes back
    reopened = backend.make()
    await reopened.open()
    try:
        assert await reopened.get("1") == queue
    finally:
        await reopened.close()
    await backend.store.open()


async def test_redis_key_is_hash_tagged_and_a_script_flush_is_survived(
        redis_server: RedisServer) -> None:  # noqa: F811
    store = RedisQueueStore(redis_server.url, 2.0, key_guard=True)
    await store.open()
    try:
        queue = q.change(EMPTY, [Replace((A,))], "phone", 1)
        assert await store.put("u1", queue, 0) is None
        raw = redis.Redis.from_url(redis_server.url)
        try:
            assert [k.decode() for k in raw.keys("*")] == [queue_key("u1")] == ["rv:{u1}:queue"]
            raw.script_flush()
        finally:
            raw.close()
        assert await store.put("u1", q.change(queue, [Next()], "phone", 2), 1) is None
        assert (await store.get("u1")).version == 2
    finally:
        await store.close()


async def test_on_change_sees_every_written_change_and_a_failing_callback_is_contained(
        backend: Backend) -> None:
    service = QueueService(backend.store)
    seen: list[tuple[str, q.Queue]] = []

    def broken(user_id: str, queue: q.Queue) -> None:
        raise RuntimeError("a subscriber's bug")

    service.on_change(broken)
    service.on_change(lambda user_id, queue: seen.append((user_id, queue)))
    written = await service.change("1", 0, [Replace((A, B))], "phone", 1)
    assert seen == [("1", written)] and await service.get("1") == written
    with pytest.raises(QueueConflict) as caught:
        await service.change("1", 0, [Append((C,))], "car", 2)
    assert caught.value.current == written and len(seen) == 1  # a refused change is no event
    with pytest.raises(q.QueueError):
        await service.change("1", 1, [q.Remove(5, "ops[0]")], "car", 3)
    assert len(seen) == 1 and await service.get("1") == written
