"""Two real Subsonic client libraries against the live server: py-opensonic (``libopensonic``, JSON
over POST forms, as modern apps talk) and py-sonic (``libsonic``, the classic client), each logging in
every way it can."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import libopensonic
import libsonic
import pytest
from libopensonic import errors as opensonic_errors

from tests.subsonic.conftest import Rest

URL = "http://127.0.0.1"


@pytest.fixture(params=["apiKey", "token", "password"])
def opensonic(request: pytest.FixtureRequest, rest: Rest) -> Iterator[libopensonic.Connection]:
    kinds = {"apiKey": {"api_key": rest.key},
             "token": {"username": "ann", "password": rest.app_password},
             "password": {"username": "ann", "password": rest.key, "legacy_auth": True}}
    conn = libopensonic.Connection(URL, port=rest.port, **kinds[request.param])
    yield conn
    conn.cleanup()


def body_of(conn: libopensonic.Connection, response: Any) -> bytes:
    """The body of a binary answer (an aiohttp response, read on the connection's own loop)."""
    data: bytes = asyncio.run_coroutine_threadsafe(response.read(), conn._loop).result(timeout=30)
    return data


def test_opensonic_browses_searches_and_fetches(opensonic: libopensonic.Connection) -> None:
    assert opensonic.ping()
    names = {e.name for e in opensonic.get_open_subsonic_extensions()}
    assert {"formPost", "apiKeyAuthentication", "songLyrics"} <= names
    artists = opensonic.get_artists()
    testers = next(a for i in artists.index for a in i.artist if a.name == "The Testers")
    artist = opensonic.get_artist(testers.id)
    album = opensonic.get_album(artist.album[0].id)
    assert [s.title for s in album.song] == ["Dawn", "Noon"]
    song = opensonic.get_song(album.song[0].id)
    assert song.title == "Dawn" and song.album_id == album.id
    found = opensonic.search3("noon")
    assert [s.title for s in found.song] == ["Noon"]
    (lyrics,) = opensonic.get_lyrics_by_song_id(song.id)
    assert lyrics.synced and [line.value for line in lyrics.line] == ["First line", "Second line"]
    listed = opensonic.get_album_list2("alphabeticalByName")
    assert {a.name for a in listed} == {"Alone", "First Light"}
    art = body_of(opensonic, opensonic.get_cover_art(album.cover_art, size=64))
    assert art[:2] == b"\xff\xd8"  # JPEG
    assert body_of(opensonic, opensonic.stream(song.id, tformat="raw"))[:4] == b"fLaC"


def test_opensonic_sees_the_failures_as_its_errors(rest: Rest) -> None:
    wrong = libopensonic.Connection(URL, port=rest.port, api_key="rv_nope")
    try:
        with pytest.raises(opensonic_errors.SonicError):
            wrong.ping()
    finally:
        wrong.cleanup()
    conn = libopensonic.Connection(URL, port=rest.port, api_key=rest.key)
    try:
        with pytest.raises(opensonic_errors.DataNotFoundError):
            conn.get_album("al-aaaaaaaaaaaaaaaa")
    finally:
        conn.cleanup()


@pytest.mark.parametrize("legacy", [False, True])
def test_py_sonic_browses_and_streams(rest: Rest, legacy: bool) -> None:
    password = rest.key if legacy else rest.app_password
    conn = libsonic.Connection(URL, "ann", password, port=rest.port, serverPath="/rest", legacyAuth=legacy)
    assert conn.ping()
    indexes = conn.getIndexes()["indexes"]["index"]
    testers = next(a for i in indexes for a in i["artist"] if a["name"] == "The Testers")
    directory = conn.getMusicDirectory(testers["id"])["directory"]
    album = conn.getMusicDirectory(directory["child"][0]["id"])["directory"]
    assert [c["title"] for c in album["child"]] == ["Dawn", "Noon"]
    songs = conn.search3("dawn")["searchResult3"]["song"]
    assert [s["title"] for s in songs] == ["Dawn"]
    body = conn.stream(songs[0]["id"]).read()
    assert body[:4] == b"fLaC"
    assert conn.getCoverArt(songs[0]["id"], size=128).read()[:2] == b"\xff\xd8"
    assert conn.getAlbumList2("random", size=5)["albumList2"]["album"]
    wrong = libsonic.Connection(URL, "ann", "wrong", port=rest.port, serverPath="/rest", legacyAuth=legacy)
    with pytest.raises(libsonic.errors.CredentialError):
        wrong.ping()
