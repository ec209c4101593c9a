"""The link store contract (revenge/scrobblers/links.py) on both backends: SQLite on a temp file, and
Redis against a real redis-server with the key guard on (a script touching an undeclared key fails, as
on Dragonfly)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from revenge.config import load_settings
from revenge.errors import StoreUnavailable
from revenge.scrobblers.links import LinkStore, open_link_store
from revenge.scrobblers.links_redis import RedisLinkStore
from revenge.scrobblers.links_sqlite import SqliteLinkStore
from revenge.scrobblers.model import Link
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LinkStore]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen: LinkStore = RedisLinkStore(server.url, 2.0, key_guard=True)
    else:
        chosen = SqliteLinkStore(tmp_path / "scrobblers.db")
    await chosen.open()
    try:
        yield chosen
    finally:
        await chosen.close()


def link(user: str = "u1", service: str = "listenbrainz", linked_at: int = 100) -> Link:
    return Link(user, service, f"acct-{user}", "v1.sealed", linked_at)  # type: ignore[arg-type]


def test_the_factory_follows_settings_store(tmp_path: Path) -> None:
    assert isinstance(open_link_store(load_settings(None, env={}, data_dir=tmp_path)), SqliteLinkStore)
    remote = load_settings(None, env={}, data_dir=tmp_path, store="redis://127.0.0.1:1/0")
    assert isinstance(open_link_store(remote), RedisLinkStore)


async def test_put_get_replace_delete_and_list(store: LinkStore) -> None:
    assert await store.get("u1", "listenbrainz") is None and await store.linked() == []
    await store.put(link())
    await store.put(link(service="lastfm"))
    await store.put(link("u2"))
    assert await store.get("u1", "listenbrainz") == link()
    assert await store.linked() == [("u1", "lastfm"), ("u1", "listenbrainz"), ("u2", "listenbrainz")]
    # A put replaces the whole link: the old error and stop are gone.
    await store.note("u1", "listenbrainz", 100, 150, error="bad", permanent=True)
    await store.put(link(linked_at=200))
    assert await store.get("u1", "listenbrainz") == link(linked_at=200)
    assert await store.delete("u1", "listenbrainz")
    assert not await store.delete("u1", "listenbrainz")
    assert await store.get("u1", "listenbrainz") is None
    assert await store.linked() == [("u1", "lastfm"), ("u2", "listenbrainz")]


async def test_notes_apply_to_the_link_of_their_linked_at_only(store: LinkStore) -> None:
    await store.put(link())
    await store.note("u1", "listenbrainz", 100, 110, error="down")
    assert await store.get("u1", "listenbrainz") == dataclasses.replace(link(), last_error="down",
                                                                       last_error_at=110)
    await store.note("u1", "listenbrainz", 100, 120)  # a success clears the error
    assert await store.get("u1", "listenbrainz") == dataclasses.replace(link(), last_sent_at=120)
    await store.note("u1", "listenbrainz", 100, 130, error="invalid token", permanent=True)
    stopped = await store.get("u1", "listenbrainz")
    assert stopped is not None and stopped.state == "stopped" and stopped.stopped == "invalid token"
    assert stopped.last_sent_at == 120
    # About a link since replaced, or removed: nothing changes, nothing is recreated.
    await store.put(link(linked_at=200))
    await store.note("u1", "listenbrainz", 100, 140, error="late", permanent=True)
    assert await store.get("u1", "listenbrainz") == link(linked_at=200)
    await store.delete("u1", "listenbrainz")
    await store.note("u1", "listenbrainz", 200, 150, error="late")
    assert await store.get("u1", "listenbrainz") is None


async def test_a_lease_has_one_holder_until_released_or_expired(store: LinkStore) -> None:
    token = await store.acquire("u1", "lastfm", 60_000)
    assert token is not None
    assert await store.acquire("u1", "lastfm", 60_000) is None
    assert await store.acquire("u1", "listenbrainz", 60_000) is not None  # per service
    assert await store.acquire("u2", "lastfm", 60_000) is not None  # per user
    await store.release("u1", "lastfm", "not-the-token")  # a stale holder frees nothing
    assert await store.acquire("u1", "lastfm", 60_000) is None
    await store.release("u1", "lastfm", token)
    again = await store.acquire("u1", "lastfm", 50)
    assert again is not None
    deadline = asyncio.get_running_loop().time() + 10
    while (late := await store.acquire("u1", "lastfm", 60_000)) is None:
        assert asyncio.get_running_loop().time() < deadline, "the lease never expired"
        await asyncio.sleep(0.02)
    await store.release("u1", "lastfm", again)  # expired and taken by another: not freed
    assert await store.acquire("u1", "lastfm", 60_000) is None
    await store.release("u1", "lastfm", late)


async def test_redis_keys_and_outage(redis_server: RedisServer) -> None:  # noqa: F811
    store = RedisLinkStore(redis_server.url, 2.0, key_guard=True)
    await store.open()
    try:
        await store.put(link("u1"))
        await store.acquire("u1", "listenbrainz", 60_000)
        raw = redis.Redis.from_url(redis_server.url)
        try:
            keys = sorted(k.decode() for k in raw.keys("*scrobbler*"))
            raw.script_flush()  # the next script call meets NOSCRIPT and reloads
        finally:
            raw.close()
        assert keys == ["rv:scrobbler-links", "rv:{u1}:scrobbler-lease:listenbrainz",
                        "rv:{u1}:scrobbler:listenbrainz"]
        await store.note("u1", "listenbrainz", 100, 5)
        redis_server.stop(hard=True)
        try:
            with pytest.raises(StoreUnavailable):
                await store.get("u1", "listenbrainz")
            with pytest.raises(StoreUnavailable):
                await store.put(link("u2"))
        finally:
            redis_server.start()
        got = await store.get("u1", "listenbrainz")
        assert got is not None and got.last_sent_at == 5
    finally:
        await store.close()
