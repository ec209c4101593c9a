"""The two session stores against each other: the Redis one (Lua, key guard on, a real redis-server)
must answer every sequence of operations exactly as the memory one (the pure rules) does; plus what
only Redis has: key expiry, script reloads, outages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revenge.errors import StoreUnavailable
from revenge.playback.session_store import (
    MemorySessionStore,
    RedisSessionStore,
    SessionStore,
    fixed_key,
    live_key,
)
from revenge.playback.sessions import PLAYER_STATES, Session
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)

IDLE_MS = 10_000
T0 = 1_800_000_000_000
ITEMS = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb")
USERS = ("1", "2")
DEVICES = ("phone", "car", "web:1")


def new_session(n: int, user: str, device: str, item: str, now: int) -> Session:
    return Session(id=f"{n:022d}", user_id=user, device_id=device, item_id=item, mode="hls",
                   profiles=("aac-256", "opus-128"), reasons=("codec_not_supported",), resume_ms=1_500,
                   created_ms=now, token_expires_at=now // 1000 + 86_400, last_active_ms=now,
                   kind="album" if item == ITEMS[1] else "item")  # both kinds go through both stores


@pytest.fixture
def flush(redis_server: RedisServer) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def by_id(sessions: list[Session]) -> list[Session]:
    return sorted(sessions, key=lambda s: s.id)


async def run(store: SessionStore, ops: list[tuple[Any, ...]]) -> list[Any]:
    """Apply ``ops`` to ``store``; one comparable result per operation."""
    now = T0
    results: list[Any] = []
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "wait":
            now += op[1]
            results.append(None)
        elif kind == "start":
            _, user, device, item, cap = op
            outcome = await store.start(new_session(n, user, device, item, now), cap, now)
            results.append((outcome.accepted, by_id(list(outcome.expired)), by_id(list(outcome.replaced))))
        elif kind == "get":
            results.append(await store.get(op[1], f"{op[2]:022d}", now))
        elif kind == "heartbeat":
            _, user, target, position, state = op
            results.append(await store.heartbeat(user, f"{target:022d}", position, state, now))
        elif kind == "touch":
            results.append(by_id(await store.touch_item(op[1], op[2], now)))
        elif kind == "end":
            results.append(await store.end(op[1], f"{op[2]:022d}"))
        elif kind == "sweep":
            live, idle = await store.sweep(op[1], now)
            results.append((by_id(live), by_id(idle)))
    return results


def operations() -> st.SearchStrategy[list[tuple[Any, ...]]]:
    target = st.integers(0, 12)  # refers to the session started by operation n (if any)
    user = st.sampled_from(USERS)
    op = st.one_of(
        st.tuples(st.just("wait"), st.sampled_from([1, IDLE_MS // 2, IDLE_MS - 1, IDLE_MS])),
        st.tuples(st.just("start"), user, st.sampled_from(DEVICES), st.sampled_from(ITEMS),
                  st.integers(1, 3)),
        st.tuples(st.just("get"), user, target),
        st.tuples(st.just("heartbeat"), user, target, st.integers(0, 10**9), st.sampled_from(PLAYER_STATES)),
        st.tuples(st.just("touch"), user, st.sampled_from(ITEMS)),
        st.tuples(st.just("end"), user, target),
        st.tuples(st.just("sweep"), user),
    )
    return st.lists(op, min_size=1, max_size=14)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations())
def test_redis_store_answers_like_the_rules(redis_server: RedisServer, flush: redis.Redis,  # noqa: F811
                                            ops: list[tuple[Any, ...]]) -> None:
    flush.flushall()

    async def both() -> tuple[list[Any], list[Any]]:
        store = RedisSessionStore(redis_server.url, IDLE_MS, 2.0, key_guard=True)
        await store.open()
        try:
            return await run(MemorySessionStore(IDLE_MS), ops), await run(store, ops)
        finally:
            await store.close()

    expected, got = asyncio.run(both())
    assert got == expected


async def test_keys_are_hash_tagged_per_user_and_expire_after_the_idle_time(
        redis_server: RedisServer, flush: redis.Redis) -> None:  # noqa: F811
    idle_ms = 400
    store = RedisSessionStore(redis_server.url, idle_ms, 2.0, key_guard=True)
    await store.open()
    try:
        now = int(time.time() * 1000)
        assert (await store.start(new_session(1, "7", "phone", ITEMS[0], now), 4, now)).accepted
        assert sorted(k.decode() for k in flush.keys("*")) == sorted([fixed_key("7"), live_key("7")])
        assert fixed_key("7") == "rv:{7}:s:fixed" and live_key("7") == "rv:{7}:s:live"
        assert 0 < flush.pttl(live_key("7")) <= idle_ms and 0 < flush.pttl(fixed_key("7")) <= idle_ms
        await asyncio.sleep(idle_ms / 1000)
        for _ in range(200):  # Redis expires keys lazily or within its 100 ms active cycle
            if not flush.exists(live_key("7"), fixed_key("7")):
                break
            await asyncio.sleep(0.05)
        assert flush.keys("*") == []  # nothing left behind by a user who walked away
        # Ending the last session removes the keys at once.
        now = int(time.time() * 1000)
        await store.start(new_session(2, "7", "phone", ITEMS[0], now), 4, now)
        assert await store.end("7", f"{2:022d}") is not None
        assert flush.keys("*") == []
    finally:
        await store.close()


async def test_a_flushed_script_cache_is_reloaded(redis_server: RedisServer,  # noqa: F811
                                                  flush: redis.Redis) -> None:
    store = RedisSessionStore(redis_server.url, IDLE_MS, 2.0)
    await store.open()
    try:
        flush.script_flush()
        started = await store.start(new_session(1, "1", "phone", ITEMS[0], T0), 4, T0)
        assert started.accepted
        beat = await store.heartbeat("1", f"{1:022d}", 42_000, "paused", T0 + 5)
        assert beat is not None
        assert beat == dataclasses.replace(new_session(1, "1", "phone", ITEMS[0], T0), position_ms=42_000,
                                           state="paused", last_active_ms=T0 + 5)
    finally:
        await store.close()


async def test_an_outage_is_store_unavailable_and_recovers(redis_server: RedisServer) -> None:  # noqa: F811
    store = RedisSessionStore(redis_server.url, IDLE_MS, 1.0)
    await store.open()
    try:
        redis_server.stop(hard=True)
        with pytest.raises(StoreUnavailable):
            await store.get("1", "x" * 22, T0)
        redis_server.start()
        assert await store.get("1", "x" * 22, T0) is None
        assert (await store.start(new_session(1, "1", "phone", ITEMS[0], T0), 4, T0)).accepted
    finally:
        await store.close()
