"""The PlaylistStore contract (revenge/playback/playlists.py) on both backends, and the pure change
rules: SQLite on a temp file, Redis on a real redis-server with the key guard on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.playback import playlists as rules
from revenge.playback.playlists import PlaylistError, PlaylistStore
from revenge.playback.playlists_redis import RedisPlaylistStore
from revenge.playback.playlists_sqlite import SqlitePlaylistStore
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

A, B, C = (c * 16 for c in "abc")


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PlaylistStore]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen: PlaylistStore = RedisPlaylistStore(server.url, 2.0, key_guard=True)
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
