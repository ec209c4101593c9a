"""Stars and ratings through a real client: star songs, albums and artists, list them, rate albums and
see the starred and highest album lists; unknown ids are 70."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import libopensonic
import pytest

from revenge.playback.marks import Marks
from revenge.playback.marks_sqlite import SqliteMarkStore
from revenge.subsonic.marks import with_marks
from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import BODIES, validate
from tests.subsonic.test_endpoints import both


@pytest.fixture
def client(rest: Rest) -> Iterator[libopensonic.Connection]:
    conn = libopensonic.Connection("http://127.0.0.1", port=rest.port, api_key=rest.key)
    yield conn
    conn.cleanup()


@pytest.fixture
def native(rest: Rest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rest.live.url, headers={"Authorization": f"Bearer {rest.key}"},
                      timeout=30) as c:
        yield c


def test_star_list_unstar_and_rate(rest: Rest, client: libopensonic.Connection) -> None:
    albums = {a["name"]: a for a in validate("getAlbumList2", rest.get("getAlbumList2", type="newest").json())
              ["album"]}
    first, alone = albums["First Light"], albums["Alone"]
    dawn = validate("search3", rest.get("search3", query="dawn").json())["song"][0]
    assert client.star(sids=[dawn["id"]], album_ids=[first["id"]], artist_ids=[first["artistId"]])
    starred, _ = both(rest, "getStarred2")
    assert [s["title"] for s in starred["song"]] == ["Dawn"] and starred["song"][0]["starred"]
    assert [a["name"] for a in starred["album"]] == ["First Light"]
    assert [a["name"] for a in starred["artist"]] == ["The Testers"]
    both(rest, "getStarred")
    listed = validate("getAlbumList2", rest.get("getAlbumList2", type="starred").json())["album"]
    assert [a["name"] for a in listed] == ["First Light"]
    assert client.unstar(sids=[dawn["id"]])
    assert "song" not in validate("getStarred2", rest.get("getStarred2").json()) or not validate(
        "getStarred2", rest.get("getStarred2").json())["song"]
    assert client.set_rating(alone["id"], 5) and client.set_rating(first["id"], 3)
    highest = validate("getAlbumList2", rest.get("getAlbumList2", type="highest").json())["album"]
    assert [a["name"] for a in highest] == ["Alone", "First Light"]
    assert client.set_rating(alone["id"], 0)
    highest = validate("getAlbumList2", rest.get("getAlbumList2", type="highest").json())["album"]
    assert [a["name"] for a in highest] == ["First Light"]
    for endpoint, params in (("star", {"id": "al-" + "a" * 16}), ("star", {"albumId": dawn["id"]}),
                             ("setRating", {"id": "zzzz", "rating": "3"}),
                             ("setRating", {"id": dawn["id"], "rating": "9"})):
        code = rest.get(endpoint, **params).json()["subsonic-response"]["error"]["code"]
        assert code == (0 if params.get("rating") == "9" else 70), (endpoint, params)


def _objects(value: Any, key: str) -> list[dict[str, Any]]:
    """Every object in an answer whose ``id`` is ``key``."""
    if isinstance(value, dict):
        own = [value] if value.get("id") == key else []
        return own + [o for child in value.values() for o in _objects(child, key)]
    if isinstance(value, list):
        return [o for child in value for o in _objects(child, key)]
    return []


def test_every_answer_carries_the_callers_stars_and_ratings(rest: Rest, client: libopensonic.Connection,
                                                            native: httpx.Client) -> None:
    first = next(a for a in validate("getAlbumList2", rest.get("getAlbumList2", type="newest").json())
                 ["album"] if a["name"] == "First Light")
    songs = {s["title"]: s for s in validate("search3", rest.get("search3", query="").json())["song"]}
    dawn, noon, artist = songs["Dawn"]["id"], songs["Noon"]["id"], first["artistId"]
    (talk,) = [i["id"] for i in native.get("/api/v1/items", params={"type": "episode"}).json()["items"]]
    marked = {dawn: 4, first["id"]: 3, artist: 5, talk: 2}
    assert client.star(sids=[dawn, talk], album_ids=[first["id"]], artist_ids=[artist])
    for key, rating in marked.items():
        assert client.set_rating(key, rating)
    assert client.create_playlist(name="Marked", song_ids=[dawn, noon])
    (playlist,) = [p for p in client.get_playlists() if p.name == "Marked"]
    assert client.save_play_queue([dawn, noon], current=dawn)
    assert client.create_bookmark(talk, 31_500)
    # Now playing as py-opensonic's player: test_playing's own report replaces this entry.
    assert rest.json("scrobble", id=talk, submission="false", c="py-opensonic")["status"] == "ok"
    calls: list[tuple[str, dict[str, object], set[str]]] = [
        ("getAlbum", {"id": first["id"]}, {first["id"], dawn}),
        ("getSong", {"id": dawn}, {dawn}),
        ("getArtist", {"id": artist}, {artist, first["id"]}),
        ("getArtists", {}, {artist}), ("getIndexes", {}, {artist}),
        ("getMusicDirectory", {"id": first["id"]}, {first["id"], dawn}),
        ("getMusicDirectory", {"id": artist}, {artist, first["id"]}),
        ("search3", {"query": ""}, {artist, first["id"], dawn}),
        ("search2", {"query": "dawn"}, {dawn}),
        ("getAlbumList2", {"type": "alphabeticalByName"}, {first["id"]}),
        ("getAlbumList", {"type": "starred"}, {first["id"]}),
        ("getRandomSongs", {"size": 10}, {dawn}), ("getSongsByGenre", {"genre": "Rock"}, {dawn}),
        ("getPlaylist", {"id": playlist.id}, {dawn}),
        ("getStarred2", {}, {artist, first["id"], dawn}), ("getStarred", {}, {artist, first["id"], dawn}),
        ("getPlayQueue", {}, {dawn}), ("getNowPlaying", {}, {talk}), ("getBookmarks", {}, {talk}),
    ]
    try:
        for endpoint, params, expected in calls:
            body = rest.json(endpoint, **params)
            if endpoint in BODIES:
                validate(endpoint, {"subsonic-response": body})
            for key in expected:
                found = _objects(body, key)
                assert found, (endpoint, key)
                assert all(o.get("userRating") == marked[key] and "starred" in o for o in found), (
                    endpoint, key, found)
            assert all("starred" not in o and "userRating" not in o for o in _objects(body, noon)), endpoint
        _, element = both(rest, "getSong", id=dawn)  # XML attributes too
        assert element.get("userRating") == "4" and element.get("starred")
        other = rest.json("getAlbum", id=first["id"], apiKey=rest.admin_key)["album"]
        assert "starred" not in other and "userRating" not in other  # the caller's marks, not ann's
        assert all("userRating" not in s for s in other["song"])  # type: ignore[index]
    finally:
        client.unstar(sids=[dawn, talk], album_ids=[first["id"]], artist_ids=[artist])
        for key in marked:
            client.set_rating(key, 0)
        client.delete_playlist(playlist.id)
        client.delete_bookmark(talk)


class CountingMarks(SqliteMarkStore):
    """The real embedded store, counting its batched reads."""

    reads = 0

    async def marks_of(self, user_id: str, keys: Sequence[str]) -> Marks:
        self.reads += 1
        return await super().marks_of(user_id, keys)


async def test_one_batched_marks_read_per_answer_and_none_without_marked_objects(tmp_path: Path) -> None:
    store = CountingMarks(tmp_path / "marks.db")
    await store.open()
    songs = ["s" * 13 + "".join("abcdefghij"[int(d)] for d in f"{n:03d}") for n in range(300)]  # item ids
    albums = [f"al-{'b' * 15}{c}" for c in "cdefg"]
    await store.star("1", [songs[7], albums[2]], 60_000)
    await store.set_rating("1", songs[7], 5)
    answers = [
        {"albumList2": {"album": [{"id": a, "song": [{"id": s} for s in songs]} for a in albums]}},
        {"playlists": {"playlist": [{"id": "pl-0123456789abcdef"}]}, "musicFolder": [{"id": 1}]},
    ]

    async def handler(call: object) -> dict[str, Any]:
        return answers.pop(0)

    call = SimpleNamespace(state=SimpleNamespace(marks=store), user=SimpleNamespace(id="1"))
    try:
        marked = with_marks(handler)
        body = await marked(call)  # type: ignore[arg-type]
        assert store.reads == 1  # 1 505 objects, one read
        album = body["albumList2"]["album"][2]  # type: ignore[index]
        assert album["starred"] == "1970-01-01T00:01:00Z" and "userRating" not in album
        assert all(s.get("userRating") == (5 if s["id"] == songs[7] else None) for s in album["song"])
        await marked(call)  # type: ignore[arg-type]
        assert store.reads == 1  # no song, album or artist in it: no read
    finally:
        await store.close()
