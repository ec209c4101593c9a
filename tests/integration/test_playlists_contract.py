"""The PlaylistStore contract (revenge/playback/playlists.py) on both backends, and the pure change
rules: SQLite on a temp file, Redis on a real redis-server with the key guard on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.playback import playlists as rules
from revenge.playback.journaled import JournaledPlaylistStore
from revenge.playback.playlists import PlaylistError, PlaylistStore
from revenge.playback.playlists_redis import RedisPlaylistStore
from revenge.playback.playlists_sqlite import SqlitePlaylistStore
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

A, B, C = (c * 16 for c in "abc")


@pytest.fixture(params=["sqlite", "redis", "journaled"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PlaylistStore]:
    if request.param != "sqlite":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen: PlaylistStore = RedisPlaylistStore(server.url, 2.0, key_guard=True)
        if request.param == "journaled":
            chosen = JournaledPlaylistStore(chosen, tmp_path, 2.0)  # type: ignore[arg-type]
    else:
        chosen = SqlitePlaylistStore(tmp_path / "playlists.db")
    await chosen.open()
    try:
        yield chosen
    finally:
        await chosen.close()


def test_changes_remove_by_old_index_then_append() -> None:
    playlist = rules.create(" Road trip ", [A, B, C, A], 1)
    assert playlist.name == "Road trip" and playlist.id.startswith("pl-")
    changed = rules.update(playlist, 2, remove=[0, 3], add=[C], name="Trip", public=True)
    assert changed.items == (B, C, C) and changed.name == "Trip" and changed.public
    assert changed.changed_ms == 2
    assert rules.decode(rules.encode(changed)) == changed
    with pytest.raises(PlaylistError):
        rules.update(playlist, 2, remove=[4])
    with pytest.raises(PlaylistError):
        rules.create("  ", [], 1)


async def test_add_get_all_put_delete_per_user(store: PlaylistStore) -> None:
    one, two = rules.create("b list", [A], 1), rules.create("A list", [B, C], 1)
    assert await store.add("1", one) and await store.add("1", two)
    assert [p.name for p in await store.all("1")] == ["A list", "b list"]
    assert await store.all("2") == [] and await store.get("2", one.id) is None
    assert await store.get("1", one.id) == one
    changed = rules.update(one, 5, add=[C])
    assert await store.put("1", changed) and await store.get("1", one.id) == changed
    assert not await store.put("2", changed)  # another user's: nothing stored
    assert await store.delete("1", one.id) and not await store.delete("1", one.id)
    assert not await store.put("1", changed)  # a deleted playlist stays deleted
    assert [p.id for p in await store.all("1")] == [two.id]


async def test_the_cap_refuses_one_more(store: PlaylistStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("revenge.playback.playlists_sqlite", "revenge.playback.playlists_redis"):
        monkeypatch.setattr(f"{module}.MAX_PLAYLISTS", 2)
    assert await store.add("1", rules.create("x", [], 1)) and await store.add("1", rules.create("y", [], 1))
    assert not await store.add("1", rules.create("z", [], 1))
    assert len(await store.all("1")) == 2


async def test_public_playlists_are_readable_by_everyone_until_made_private(store: PlaylistStore) -> None:
    mine, shared = rules.create("mine", [A], 1), rules.create("Shared", [B], 1)
    other = rules.create("c", [], 1)
    assert await store.add("1", mine) and await store.add("1", shared) and await store.add("2", other)
    assert await store.public() == [] and await store.get_public(shared.id) is None
    shared = rules.update(shared, 2, public=True)
    other = rules.update(other, 2, public=True)
    assert await store.put("1", shared) and await store.put("2", other)
    assert await store.public() == [("2", other), ("1", shared)]  # by name, with the owner
    assert await store.get_public(shared.id) == ("1", shared) and await store.get_public(mine.id) is None
    assert await store.get("2", shared.id) is None  # still owned by "1" alone
    assert not await store.put("2", rules.update(shared, 3, name="taken"))  # nothing stored for "2"
    assert await store.get_public(shared.id) == ("1", shared)
    assert await store.put("1", rules.update(shared, 4, public=False))
    assert await store.get_public(shared.id) is None and await store.public() == [("2", other)]
    assert await store.delete("2", other.id)
    assert await store.public() == [] and await store.get_public(other.id) is None


async def test_a_playlist_stored_public_is_listed(store: PlaylistStore) -> None:
    created = rules.update(rules.create("born public", [A], 1), 1, public=True)
    assert await store.add("1", created)
    assert await store.public() == [("1", created)] and await store.get_public(created.id) == ("1", created)


async def test_sqlite_indexes_public_playlists_stored_before_the_index(tmp_path: Path) -> None:
    import sqlite3

    public = rules.update(rules.create("old", [A], 1), 1, public=True)
    private = rules.create("older", [B], 1)
    with sqlite3.connect(tmp_path / "playlists.db") as db:  # the schema of the release before the index
        db.execute("CREATE TABLE playlists (user_id TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, "
                   "PRIMARY KEY (user_id, id)) WITHOUT ROWID")
        db.executemany("INSERT INTO playlists VALUES (?, ?, ?)",
                       [("1", public.id, rules.encode(public)), ("1", private.id, rules.encode(private))])
    store = SqlitePlaylistStore(tmp_path / "playlists.db")
    await store.open()
    try:
        assert await store.public() == [("1", public)]
    finally:
        await store.close()


async def test_redis_drops_index_entries_of_gone_or_private_playlists(request: pytest.FixtureRequest) -> None:
    import redis.asyncio as aioredis

    from revenge.playback.playlists_redis import PUBLIC_KEY, playlists_key

    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisPlaylistStore(server.url, 2.0, key_guard=True)
    await store.open()
    raw = aioredis.from_url(server.url)
    try:
        kept = rules.update(rules.create("kept", [A], 1), 1, public=True)
        assert await store.add("1", kept)
        private = rules.create("private", [B], 1)
        assert await store.add("1", private)
        # What a crash between the two writes leaves: index entries naming a private and a gone playlist.
        await raw.hset(PUBLIC_KEY, mapping={private.id: "1", "pl-" + "0" * 16: "9"})
        assert await store.public() == [("1", kept)]
        assert await store.get_public(private.id) is None
        assert await raw.hkeys(PUBLIC_KEY) == [kept.id.encode()]
        assert await raw.hlen(playlists_key("1")) == 2
    finally:
        await raw.aclose()
        await store.close()
