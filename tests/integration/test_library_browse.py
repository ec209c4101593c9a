"""The music library over real HTTP: real tagged files (PyAV writes them, mutagen adds what FFmpeg cannot
write, such as repeated fields), a real scan, then albums, artists, genres and search."""

from __future__ import annotations

import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mutagen.flac import FLAC

from revenge.library.browse import encode_list_cursor
from tests.libgen import keyed_client
from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import write_audio

MB_DOUBLE = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"


def _track(path: Path, **tags: str) -> None:
    write_audio(path, samples=4_410, tags=tags)


def build_music(music: Path) -> None:
    _track(music / "Beyoncé/Lemonade/01 Formation.flac", title="Formation", artist="Beyoncé",
           album_artist="Beyoncé", album="Lemonade", track="1", genre="R&B", date="2016")
    # One album in two folders: the tags agree.
    _track(music / "Jazz A/Kind of Blue/01.flac", title="So What", artist="Miles Davis",
           album_artist="Miles Davis", album="Kind of Blue", track="1", genre="Jazz", date="1959")
    _track(music / "Jazz B/kind of blue/02.mp3", title="Freddie Freeloader", artist="Miles Davis",
           album_artist="miles  davis", album="Kind Of Blue", track="2", genre="Jazz", date="1959")
    # A compilation: three artists, no album artist, the flag.
    for n, artist in enumerate(("Alpha", "Beta", "Gamma"), start=1):
        _track(music / f"Summer Hits/{n:02d} {artist}.flac", title=f"Hit {n}", artist=artist,
               album="Summer Hits", track=str(n), compilation="1", genre="Pop", date="2020")
    # Two discs in two folders, one MusicBrainz release (one track spells its album artist otherwise).
    for disc, track, artist in ((1, 2, "Twin"), (2, 1, "The Twins"), (1, 1, "Twin")):
        _track(music / f"Double Life/CD{disc}/{track:02d}.flac", title=f"D{disc}T{track}", artist="Twin",
               album_artist=artist, album="Double Life", disc=f"{disc}/2", track=str(track),
               musicbrainz_albumid=MB_DOUBLE, genre="Rock", date="2001",
               **({"discsubtitle": "Encore"} if disc == 2 else {}))
    # Two artists on one track, as repeated Vorbis fields (FFmpeg would join them into one).
    duet = music / "Duets/01 Duet.flac"
    _track(duet, title="Duet", album_artist="Alpha", album="Duets", track="1", genre="Pop", date="2022")
    tagged = FLAC(duet)
    tagged["ARTIST"] = ["Alpha", "Beta"]
    tagged.save()
    broken = music / "Broken/01 Bad tags.flac"
    _track(broken, title="Bad", album="Broken", artist="Nobody")
    corrupt_vorbis_comment(broken)


def corrupt_vorbis_comment(path: Path) -> None:
    """Make the FLAC's VORBIS_COMMENT block claim 1000 comments: FFmpeg still plays the file (and
    drops the tags), mutagen refuses it."""
    data = bytearray(path.read_bytes())
    pos = 4
    while True:
        header, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        if header & 0x7F == 4:
            vendor = struct.unpack_from("<I", data, pos + 4)[0]
            struct.pack_into("<I", data, pos + 8 + vendor, 1000)
            break
        assert not header & 0x80, "no VORBIS_COMMENT block"
        pos += 4 + size
    path.write_bytes(data)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    build_music(root)
    return root


@pytest.fixture(scope="module")
def server(music: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    data = tmp_path_factory.mktemp("data")
    key = add_user(data, "listener")
    with live_server(test_settings(data, library=(music,))) as live:
        yield live, key


@pytest.fixture(scope="module")
def client(server: tuple[LiveServer, str]) -> Iterator[httpx.Client]:
    with keyed_client(*server) as c:
        yield c


def get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(client: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        body = get(client, path, **params, **({"cursor": cursor} if cursor else {}))
        rows.extend(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("too many pages")


def albums_by_name(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in all_pages(client, "/api/v1/albums", "albums", limit=500)}


def test_albums_group_as_the_tags_say(client: httpx.Client) -> None:
    albums = albums_by_name(client)
    assert sorted(albums) == ["Double Life", "Duets", "Kind of Blue", "Lemonade", "Summer Hits"]
    assert albums["Kind of Blue"]["track_count"] == 2  # two folders, names differing in case and spaces
    hits = albums["Summer Hits"]
    assert hits["compilation"] and hits["artist"] == "Various Artists" and hits["track_count"] == 3
    double = albums["Double Life"]
    assert (double["track_count"], double["disc_count"]) == (3, 2)
    assert double["musicbrainz_release_id"] == MB_DOUBLE
    assert albums["Lemonade"]["year"] == 2016 and albums["Lemonade"]["genres"][0]["name"] == "R&B"


def test_a_file_whose_tags_cannot_be_read_fails_alone(client: httpx.Client) -> None:
    failures = get(client, "/api/v1/library/failures")["failures"]
    assert [(f["path"], f["reason"].split(":")[0]) for f in failures] == [
        ("Broken/01 Bad tags.flac", "cannot read tags")]
    assert "Broken" not in albums_by_name(client)


def test_a_two_disc_album_in_disc_and_track_order_with_progress(client: httpx.Client) -> None:
    album_id = albums_by_name(client)["Double Life"]["id"]
    body = get(client, f"/api/v1/albums/{album_id}")
    assert [(d["number"], d["subtitle"], [t["title"] for t in d["tracks"]]) for d in body["discs"]] == [
        (1, None, ["D1T1", "D1T2"]), (2, "Encore", ["D2T1"])]
    track = body["discs"][0]["tracks"][0]
    assert track["progress"]["play_count"] == 0 and track["album_id"] == album_id
    assert track["tags"]["disc_total"] == 2 and track["tags"]["mb_release_id"] == MB_DOUBLE
    assert client.get("/api/v1/albums/aaaaaaaaaaaaaaaa").status_code == 404
    assert client.get("/api/v1/albums/not-an-id").status_code == 400


def test_artists_with_their_albums_and_the_albums_they_appear_on(client: httpx.Client) -> None:
    artists = {a["name"]: a for a in all_pages(client, "/api/v1/artists", "artists", limit=2)}
    expected = {"Alpha", "Beta", "Gamma", "Beyoncé", "Miles Davis", "Twin", "The Twins", "Various Artists"}
    assert expected <= set(artists)
    beta = get(client, f"/api/v1/artists/{artists['Beta']['id']}")
    assert beta["albums"] == [] and sorted(a["name"] for a in beta["appears_on"]) == ["Duets", "Summer Hits"]
    alpha = get(client, f"/api/v1/artists/{artists['Alpha']['id']}")
    assert [a["name"] for a in alpha["albums"]] == ["Duets"]
    assert [a["name"] for a in alpha["appears_on"]] == ["Summer Hits"]
    assert artists["Miles Davis"]["album_count"] == 1 and artists["Miles Davis"]["track_count"] == 2
    duets = get(client, f"/api/v1/albums/{alpha['albums'][0]['id']}")
    assert [a["name"] for a in duets["discs"][0]["tracks"][0]["artists"]] == ["Alpha", "Beta"]


def test_genres_with_counts(client: httpx.Client) -> None:
    genres = {g["name"]: (g["album_count"], g["track_count"])
              for g in all_pages(client, "/api/v1/genres", "genres", limit=2)}
    assert genres == {"Jazz": (1, 2), "Pop": (2, 4), "R&B": (1, 1), "Rock": (1, 3)}


@pytest.mark.parametrize("sort", ["alphabetical", "artist", "newest", "random", "year"])
def test_every_sort_pages_through_every_album_once(client: httpx.Client, sort: str) -> None:
    paged = all_pages(client, "/api/v1/albums", "albums", sort=sort, limit=2)
    assert sorted(a["name"] for a in paged) == sorted(albums_by_name(client))


def test_sorts_and_filters(client: httpx.Client) -> None:
    names = lambda **params: [a["name"] for a in get(client, "/api/v1/albums", **params)["albums"]]  # noqa: E731
    assert names(sort="year") == ["Kind of Blue", "Double Life", "Lemonade", "Summer Hits", "Duets"]
    assert names(sort="alphabetical") == ["Double Life", "Duets", "Kind of Blue", "Lemonade", "Summer Hits"]
    assert names(sort="year", year_from="2001", year_to="2016") == ["Double Life", "Lemonade"]
    assert sorted(names(genre="pop")) == ["Duets", "Summer Hits"]
    jazz = {g["name"]: g["id"] for g in get(client, "/api/v1/genres")["genres"]}["Jazz"]
    assert names(genre=jazz) == ["Kind of Blue"]
    for params, field in (({"sort": "played"}, "sort"), ({"cursor": "bogus"}, "cursor"),
                          ({"year_from": "²"}, "year_from"), ({"limit": "501"}, "limit")):
        response = client.get("/api/v1/albums", params=params)
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    artist_cursor = get(client, "/api/v1/artists", limit=1)["next_cursor"]
    assert client.get("/api/v1/albums", params={"cursor": artist_cursor}).status_code == 400


def test_recently_played_albums_from_the_callers_plays(client: httpx.Client) -> None:
    albums = albums_by_name(client)
    tracks = {name: get(client, f"/api/v1/albums/{albums[name]['id']}")["discs"][0]["tracks"]
              for name in ("Lemonade", "Summer Hits", "Duets")}
    now = int(time.time() * 1000)
    for name, ago in (("Summer Hits", 30_000), ("Lemonade", 20_000), ("Duets", 40_000)):
        for n, track in enumerate(tracks[name]):
            r = client.put(f"/api/v1/playback/progress/{track['id']}",
                           json={"position_seconds": 0, "event": "start", "device_id": "phone",
                                 "client_ts": now - ago + n})
            assert r.status_code == 200, r.text
    names = lambda **params: [a["name"] for a in all_pages(client, "/api/v1/albums", "albums", **params)]  # noqa: E731
    assert names(sort="recently_played") == ["Lemonade", "Summer Hits", "Duets"]
    assert names(sort="recently_played", limit=1) == ["Lemonade", "Summer Hits", "Duets"]  # paged
    assert names(sort="recently_played", genre="pop") == ["Summer Hits", "Duets"]
    assert names(sort="frequent") == []  # 0.1 s tracks never count as a play (the service test counts)
    bad = encode_list_cursor("frequent", 0, ["x", 1, albums["Duets"]["id"]])
    assert client.get("/api/v1/albums", params={"sort": "frequent", "cursor": bad}).status_code == 400


def test_search_folds_diacritics_matches_prefixes_and_ranks(client: httpx.Client) -> None:
    found = get(client, "/api/v1/search", q="beyonce")
    assert [a["name"] for a in found["artists"]] == ["Beyoncé"]
    assert [a["name"] for a in found["albums"]] == ["Lemonade"]
    assert [t["title"] for t in found["tracks"]] == ["Formation"]
    assert [a["name"] for a in get(client, "/api/v1/search", q="lemo")["albums"]] == ["Lemonade"]
    fred = get(client, "/api/v1/search", q="fred free")["tracks"]
    assert [t["title"] for t in fred] == ["Freddie Freeloader"]
    # A title match ranks above a match of the artist only.
    duet = get(client, "/api/v1/search", q="duet")["tracks"]
    assert duet[0]["title"] == "Duet"
    assert get(client, "/api/v1/search", q='"*) NEAR( ^:') == {"artists": [], "albums": [], "tracks": []}
    assert get(client, "/api/v1/search", q=" \x85") == {"artists": [], "albums": [], "tracks": []}  # no word
    assert client.get("/api/v1/search", params={"q": ""}).status_code == 400
    assert client.get("/api/v1/search").status_code == 400


def _ids(client: httpx.Client) -> dict[str, Any]:
    return {
        "albums": {a["name"]: a["id"] for a in all_pages(client, "/api/v1/albums", "albums", limit=500)},
        "artists": {a["name"]: a["id"] for a in all_pages(client, "/api/v1/artists", "artists", limit=500)},
        "genres": {g["name"]: g["id"] for g in all_pages(client, "/api/v1/genres", "genres", limit=500)},
    }


def test_ids_are_stable_across_restarts_rebuilds_and_changes(tmp_path: Path) -> None:
    music = tmp_path / "music"
    build_music(music)
    data = tmp_path / "data"
    key = add_user(data, "listener")
    settings = test_settings(data, library=(music,))
    with live_server(settings) as live, keyed_client(live, key) as client:
        first = _ids(client)
    with live_server(settings) as live, keyed_client(live, key) as client:  # restart: a no-change rescan
        assert _ids(client) == first
    (data / "catalog.db").unlink()  # rebuilt from scratch: the same ids
    for suffix in ("-wal", "-shm"):
        (data / f"catalog.db{suffix}").unlink(missing_ok=True)
    with live_server(settings) as live, keyed_client(live, key) as client:
        assert _ids(client) == first
    # A track changes its title, another leaves its album, an album goes: the rest keeps its ids.
    tagged = FLAC(music / "Double Life/CD1/01.flac")
    tagged["TITLE"] = "Renamed"
    tagged.save()
    (music / "Summer Hits/03 Gamma.flac").unlink()
    shutil.rmtree(music / "Beyoncé")
    with live_server(settings) as live, keyed_client(live, key) as client:
        now = _ids(client)
        assert now["albums"] == {k: v for k, v in first["albums"].items() if k != "Lemonade"}
        assert now["artists"] == {k: v for k, v in first["artists"].items() if k not in ("Beyoncé", "Gamma")}
        assert "R&B" not in now["genres"]
        double = get(client, f"/api/v1/albums/{first['albums']['Double Life']}")
        assert double["discs"][0]["tracks"][0]["title"] == "Renamed"
        hits = get(client, f"/api/v1/albums/{first['albums']['Summer Hits']}")
        assert hits["track_count"] == 2
        assert get(client, "/api/v1/search", q="beyonce") == {"artists": [], "albums": [], "tracks": []}
        assert client.get(f"/api/v1/albums/{first['albums']['Lemonade']}").status_code == 404
