"""The now-playing store (revenge/playback/now_playing.py) on both backends: in process, and Redis on a
real redis-server with the key guard on, where two stores (two instances) see each other's entries,
keys expire with their last entry and the per-server index stays trimmed and bounded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from revenge.playback import now_playing_redis
from revenge.playback.now_playing import TTL_SECONDS, NowPlaying, NowPlayingStore
from revenge.playback.now_playing_redis import INDEX_KEY, RedisNowPlaying, user_key
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

A, B = "a" * 16, "b" * 16


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[NowPlayingStore]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen: NowPlayingStore = RedisNowPlaying(server.url, 2.0, key_guard=True)
    else:
        chosen = NowPlaying()
    await chosen.open()
    try:
        yield chosen
    finally:
        await chosen.close()


async def test_one_entry_per_player_newest_first_until_it_ends(store: NowPlayingStore) -> None:
    now = time.time()
    await store.report("1", "ann", "phone", A, now, 60)
    await store.report("1", "ann", "desk", A, now + 1, 30)
    await store.report("1", "ann", "phone", B, now + 2, 60)  # the phone moved on: replaced
    await store.report("2", "bob", "car", B, now + 3, None)  # no length: the ttl
    found = await store.current(now + 4)
    assert [(p.user_name, p.player, p.item_id) for p in found] == [
        ("bob", "car", B), ("ann", "phone", B), ("ann", "desk", A)]
    assert found[1].since == pytest.approx(now + 2) and found[1].until == pytest.approx(now + 62, abs=0.01)
    assert found[0].until == pytest.approx(now + 3 + TTL_SECONDS, abs=0.01)
    assert [p.player for p in await store.current(now + 40)] == ["car", "phone"]  # the desk's ended
    assert [p.player for p in await store.current(now + 70)] == ["car"]


Pair = tuple[RedisNowPlaying, RedisNowPlaying, aioredis.Redis]


@pytest.fixture
async def redis_pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    """Two stores on one server, as two instances have, and a plain client to look at the keys."""
    server: RedisServer = request.getfixturevalue("redis_server")
    a, b = (RedisNowPlaying(server.url, 2.0, key_guard=True) for _ in range(2))
    await a.open()
    await b.open()
    raw = aioredis.from_url(server.url)
    try:
        yield a, b, raw
    finally:
        await raw.aclose()
        await a.close()
        await b.close()


async def test_redis_entries_are_shared_expire_and_the_index_stays_trimmed(redis_pair: Pair) -> None:
    a, b, raw = redis_pair
    now = time.time()
    await a.report("1", "ann", "phone", A, now, 60)
    await b.report("1", "ann", "desk", B, now, 30)  # B's shorter end does not shorten A's
    assert [p.player for p in await b.current(now + 1)] == ["desk", "phone"]  # same start: by player
    assert [p.player for p in await a.current(now + 1)] == ["desk", "phone"]
    assert await raw.zscore(INDEX_KEY, "1") == pytest.approx((now + 60) * 1000, abs=2)
    assert 55_000 < await raw.pttl(user_key("1")) <= 60_000  # the key goes with its last entry
    await a.report("2", "bob", "car", A, now, 5)
    assert await b.current(now + 10) != [] and await raw.zcard(INDEX_KEY) == 1  # bob's ended: trimmed
    await b.report("1", "ann", "tv", A, now + 40, 60)  # a write drops ann's ended desk entry
    assert sorted(await raw.hkeys(user_key("1"))) == [b"phone", b"tv"]


async def test_redis_bounds_players_per_user_and_users_in_the_index(redis_pair: Pair,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, raw = redis_pair
    monkeypatch.setattr(now_playing_redis, "MAX_PLAYERS", 2)
    monkeypatch.setattr(now_playing_redis, "MAX_USERS", 2)
    now = time.time()
    for n, length in enumerate((30, 90, 60)):
        await a.report("1", "ann", f"p{n}", A, now, length)
    assert sorted(await raw.hkeys(user_key("1"))) == [b"p1", b"p2"]  # the one ending soonest went
    for user, length in (("2", 20), ("3", 200)):
        await a.report(user, user, "x", A, now, length)
    assert await raw.zrange(INDEX_KEY, 0, -1) == [b"1", b"3"]  # the two playing longest
    assert {p.user_id for p in await b.current(now + 1)} == {"1", "3"}
