"""The MarkStore contract (revenge/playback/marks.py), stars and ratings, on both backends: SQLite on a
temp file and Redis on a real redis-server with the key guard on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.playback import marks
from revenge.playback.journaled import JournaledMarkStore
from revenge.playback.marks import MarkStore, TooManyMarks
from revenge.playback.marks_redis import RedisMarkStore
from revenge.playback.marks_sqlite import SqliteMarkStore
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

SONG, ALBUM, ARTIST = "a" * 16, "al-" + "b" * 16, "ar-" + "c" * 16


@pytest.fixture(params=["sqlite", "redis", "journaled"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MarkStore]:
    if request.param != "sqlite":
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen: MarkStore = RedisMarkStore(server.url, 2.0, key_guard=True)
        if request.param == "journaled":
            chosen = JournaledMarkStore(chosen, tmp_path, 2.0)  # type: ignore[arg-type]
    else:
        chosen = SqliteMarkStore(tmp_path / "marks.db")
    await chosen.open()
    try:
        yield chosen
    finally:
        await chosen.close()


async def test_stars_keep_their_first_time_and_are_per_user(store: MarkStore) -> None:
    await store.star("1", [SONG, ALBUM], 1000)
    await store.star("1", [SONG, ARTIST], 2000)
    assert await store.starred("1") == {SONG: 1000, ALBUM: 1000, ARTIST: 2000}
    assert await store.starred("2") == {}
    await store.unstar("1", [ALBUM, "never-starred"])
    assert await store.starred("1") == {SONG: 1000, ARTIST: 2000}


async def test_ratings_set_change_and_remove(store: MarkStore) -> None:
    await store.set_rating("1", SONG, 4)
    await store.set_rating("1", SONG, 5)
    await store.set_rating("1", ALBUM, 2)
    assert await store.ratings("1") == {SONG: 5, ALBUM: 2}
    await store.set_rating("1", ALBUM, 0)
    assert await store.ratings("1") == {SONG: 5} and await store.ratings("2") == {}
    with pytest.raises(ValueError):
        await store.set_rating("1", SONG, 6)


async def test_the_cap_refuses_new_marks_and_keeps_old_ones(store: MarkStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("revenge.playback.marks_sqlite", "revenge.playback.marks_redis"):
        monkeypatch.setattr(f"{module}.MAX_MARKS", 2)
    await store.star("1", [SONG, ALBUM], 1)
    with pytest.raises(TooManyMarks):
        await store.star("1", [ARTIST], 2)
    await store.star("1", [SONG], 3)  # starred already: no new mark
    assert await store.starred("1") == {SONG: 1, ALBUM: 1}
    await store.set_rating("1", SONG, 1)
    await store.set_rating("1", ALBUM, 1)
    with pytest.raises(TooManyMarks):
        await store.set_rating("1", ARTIST, 1)
    await store.set_rating("1", SONG, 3)
    assert await store.ratings("1") == {SONG: 3, ALBUM: 1}
    assert marks.MAX_MARKS == 20_000


@pytest.mark.parametrize("whole", [True, False, None], ids=["read-whole", "look-up", "chosen"])
async def test_marks_of_reads_only_the_keys_asked(store: MarkStore, monkeypatch: pytest.MonkeyPatch,
                                                  whole: bool | None) -> None:
    """The same answer whether the store reads a user's marks whole or looks the keys up (in batches:
    two keys each here), as ``marks.read_whole`` chooses."""
    for module in ("revenge.playback.marks_sqlite", "revenge.playback.marks_redis"):
        monkeypatch.setattr(f"{module}.MAX_LOOKUP", 2)
        if whole is not None:
            monkeypatch.setattr(f"{module}.read_whole", lambda held, asked: whole)
    await store.star("1", [SONG, ARTIST], 1000)
    await store.set_rating("1", SONG, 4)
    await store.set_rating("1", ALBUM, 2)
    await store.star("2", [ALBUM], 5)
    found = await store.marks_of("1", [SONG, ALBUM, "x" * 16, ARTIST, SONG])  # two batches of two, one
    assert found == marks.Marks(starred={SONG: 1000, ARTIST: 1000}, ratings={SONG: 4, ALBUM: 2})
    assert await store.marks_of("1", [ALBUM]) == marks.Marks(ratings={ALBUM: 2})
    assert await store.marks_of("2", [SONG, ALBUM]) == marks.Marks(starred={ALBUM: 5})
    assert await store.marks_of("3", [SONG]) == marks.Marks()
    assert await store.marks_of("1", []) == marks.Marks()


def test_read_whole_when_the_user_holds_no_more_marks_than_asked() -> None:
    assert marks.read_whole(0, 1) and marks.read_whole(1500, 1500)
    assert not marks.read_whole(1501, 1500) and not marks.read_whole(20_000, 20)
