"""Every implemented endpoint over real HTTP: the JSON answer against the schemas written from the spec
(tests/subsonic/schemas.py), the XML answer parsed for the same fields."""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import BODIES, validate
from tests.waits import wait_until

NS = "{http://subsonic.org/restapi}"


def both(rest: Rest, endpoint: str, **params: object) -> tuple[dict[str, Any], ET.Element]:
    """The endpoint's body (schema-checked JSON) and its XML element, which must carry the same scalar
    fields as attributes."""
    body = validate(endpoint, rest.get(endpoint, **params).json())
    xml = rest.get(endpoint, **params, f="xml")
    root = ET.fromstring(xml.content)
    assert root.get("status") == "ok"
    key = BODIES[endpoint][0]
    element = root.find(NS + key) if key else root
    assert element is not None, (endpoint, xml.text[:300])
    if isinstance(body, dict):
        scalars = {k: v for k, v in body.items() if not isinstance(v, (dict, list)) and k != "value"}
        assert {k: element.get(k) for k in scalars} == {
            k: ("true" if v is True else "false" if v is False else str(v)) for k, v in scalars.items()}
    return body, element


def first_album(rest: Rest, name: str) -> dict[str, Any]:
    albums = validate("getAlbumList2", rest.get("getAlbumList2", type="alphabeticalByName",
                                                size=50).json())["album"]
    return next(a for a in albums if a["name"] == name)


@pytest.mark.parametrize("endpoint", ["ping", "getLicense", "getOpenSubsonicExtensions", "getUser",
                                      "getMusicFolders", "getArtists", "getIndexes", "getGenres",
                                      "getScanStatus"])
def test_endpoints_without_parameters(rest: Rest, endpoint: str) -> None:
    both(rest, endpoint)


def test_browse_artist_album_song_in_both_formats(rest: Rest) -> None:
    artists, _ = both(rest, "getArtists")
    index = {i["name"]: i["artist"] for i in artists["index"]}
    testers = next(a for a in index["T"] if a["name"] == "The Testers")  # filed without "The"? no: under T
    artist, element = both(rest, "getArtist", id=testers["id"])
    assert [a["name"] for a in artist["album"]] == ["First Light"]
    assert [a.get("name") for a in element.findall(NS + "album")] == ["First Light"]
    album, element = both(rest, "getAlbum", id=artist["album"][0]["id"])
    assert [s["title"] for s in album["song"]] == ["Dawn", "Noon"] and album["year"] == 2004
    assert [s.get("title") for s in element.findall(NS + "song")] == ["Dawn", "Noon"]
    song, _ = both(rest, "getSong", id=album["song"][0]["id"])
    assert song["albumId"] == album["id"] and song["duration"] == 2 and song["suffix"] == "flac"
    directory, _ = both(rest, "getMusicDirectory", id=testers["id"])
    assert [c["title"] for c in directory["child"]] == ["First Light"] and directory["child"][0]["isDir"]
    directory, _ = both(rest, "getMusicDirectory", id=album["id"])
    assert [c["title"] for c in directory["child"]] == ["Dawn", "Noon"]
    both(rest, "getArtistInfo2", id=testers["id"])
    both(rest, "getAlbumInfo2", id=album["id"])


def test_album_lists_random_and_genre(rest: Rest) -> None:
    for kind in ("random", "newest", "alphabeticalByName", "alphabeticalByArtist", "frequent", "recent",
                 "highest", "starred"):
        lists, _ = both(rest, "getAlbumList2", type=kind, size=10)
        assert len(lists.get("album", [])) == (0 if kind in ("frequent", "recent", "highest", "starred")
                                               else 2), kind
    by_name, _ = both(rest, "getAlbumList2", type="alphabeticalByName", size=1, offset=1)
    assert [a["name"] for a in by_name["album"]] == ["First Light"]  # after "Alone"
    years, _ = both(rest, "getAlbumList2", type="byYear", fromYear=2000, toYear=2010)
    assert [a["name"] for a in years["album"]] == ["First Light"]
    genre, _ = both(rest, "getAlbumList2", type="byGenre", genre="Jazz")
    assert [a["name"] for a in genre["album"]] == ["Alone"]
    legacy, _ = both(rest, "getAlbumList", type="newest")
    assert all(a["isDir"] and a["title"] for a in legacy["album"])
    random, _ = both(rest, "getRandomSongs", size=10)
    assert sorted(s["title"] for s in random["song"]) == ["Dawn", "Noon", "Quiet"]
    rock, _ = both(rest, "getSongsByGenre", genre="Rock")
    assert [s["title"] for s in rock["song"]] == ["Dawn", "Noon"]


def test_search_finds_words_and_an_empty_query_pages_everything(rest: Rest) -> None:
    found, _ = both(rest, "search3", query="dawn")
    assert [s["title"] for s in found["song"]] == ["Dawn"]
    everything, _ = both(rest, "search3", query="", songCount=2, albumCount=500, artistCount=500)
    assert len(everything["song"]) == 2 and len(everything["album"]) == 2
    rest_of_it, _ = both(rest, "search3", query='""', songCount=2, songOffset=2)
    assert sorted(s["title"] for s in everything["song"] + rest_of_it["song"]) == ["Dawn", "Noon", "Quiet"]
    both(rest, "search2", query="first")


def test_lyrics_synced_by_song_and_plain_by_title(rest: Rest) -> None:
    album = first_album(rest, "First Light")
    songs = validate("getAlbum", rest.get("getAlbum", id=album["id"]).json())["song"]
    lyrics, element = both(rest, "getLyricsBySongId", id=songs[0]["id"])
    (structured,) = lyrics["structuredLyrics"]
    assert structured["synced"] is True
    assert structured["line"] == [{"start": 500, "value": "First line"},
                                  {"start": 1200, "value": "Second line"}]
    lines = element.find(NS + "structuredLyrics").findall(NS + "line")  # type: ignore[union-attr]
    assert [(x.get("start"), x.text) for x in lines] == [("500", "First line"), ("1200", "Second line")]
    assert validate("getLyricsBySongId", rest.get("getLyricsBySongId", id=songs[1]["id"]).json()) == {
        "structuredLyrics": []}
    plain, element = both(rest, "getLyrics", artist="The Testers", title="Dawn")
    assert plain["value"] == "First line\nSecond line" and element.text == "First line\nSecond line"


def test_cover_art_by_song_album_artist_at_any_size(rest: Rest) -> None:
    album = first_album(rest, "First Light")
    for art_id in (album["coverArt"], album["artistId"]):
        response = rest.get("getCoverArt", id=art_id, size=100)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    huge = rest.get("getCoverArt", id=album["coverArt"], size=99999)
    assert huge.status_code == 200 and huge.headers["content-type"] == "image/jpeg"
    none = rest.get("getCoverArt", id=first_album(rest, "Alone")["coverArt"])
    assert none.json()["subsonic-response"]["error"]["code"] == 70


def duration_of(data: bytes, tmp_path: Path) -> float:
    """Seconds of audio ffmpeg decodes from ``data`` (counted in samples, not read off a header)."""
    path = tmp_path / "streamed"
    path.write_bytes(data)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "8000",
                          "pipe:1"], capture_output=True, check=True).stdout
    return len(pcm) / 2 / 8000


def test_stream_and_download_send_the_original_with_ranges(rest: Rest, tmp_path: Path) -> None:
    album = first_album(rest, "First Light")
    songs = validate("getAlbum", rest.get("getAlbum", id=album["id"]).json())["song"]
    for song, seconds in zip(songs, (2.0, 1.5), strict=True):
        for fmt in (None, "raw"):
            response = rest.get("stream", id=song["id"], format=fmt)
            assert response.status_code == 200 and len(response.content) == song["size"]
            assert abs(duration_of(response.content, tmp_path) - seconds) <= 0.1
    part = httpx.get(f"{rest.live.url}/rest/stream", params={"v": "1.16.1", "c": "t", "apiKey": rest.key,
                                                             "id": songs[0]["id"]},
                     headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and len(part.content) == 100
    past = httpx.get(f"{rest.live.url}/rest/stream", params={"v": "1.16.1", "c": "t", "apiKey": rest.key,
                                                             "id": songs[0]["id"]},
                     headers={"Range": f"bytes={songs[0]['size'] + 10}-"}, timeout=30)
    assert past.status_code == 416
    download = rest.get("download", id=songs[1]["id"])
    assert download.status_code == 200 and download.headers["content-disposition"] == "attachment"


def test_scan_start_is_for_admins(rest: Rest) -> None:
    assert rest.get("startScan").json()["subsonic-response"]["error"]["code"] == 50
    response = rest.get("startScan", apiKey=rest.admin_key).json()["subsonic-response"]
    assert response["status"] == "ok" and "scanning" in response["scanStatus"]


@pytest.mark.parametrize("fmt, codec", [("mp3", "mp3"), ("opus", "opus"), ("aac", "aac")])
@pytest.mark.parametrize("title, seconds", [("Dawn", 2.0), ("Noon", 1.5), ("Quiet", 1.0)])
def test_stream_transcodes_to_each_format_at_the_source_duration(rest: Rest, tmp_path: Path, fmt: str,
                                                                 codec: str, title: str,
                                                                 seconds: float) -> None:
    found = validate("search3", rest.get("search3", query=title).json())["song"]
    song = next(s for s in found if s["title"] == title)
    response = rest.get("stream", id=song["id"], format=fmt, maxBitRate=128)
    assert response.status_code == 200, response.text
    path = tmp_path / f"streamed.{fmt}"
    path.write_bytes(response.content)
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=codec_name", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    assert probe.stdout.strip() == codec
    assert abs(duration_of(response.content, tmp_path) - seconds) <= 0.1


def test_stream_time_offset_and_the_original_when_it_already_fits(rest: Rest, tmp_path: Path) -> None:
    dawn = validate("search3", rest.get("search3", query="dawn").json())["song"][0]
    later = rest.get("stream", id=dawn["id"], format="mp3", timeOffset=1)
    assert abs(duration_of(later.content, tmp_path) - 1.0) <= 0.1
    noon = validate("search3", rest.get("search3", query="noon").json())["song"][0]
    same = rest.get("stream", id=noon["id"], format="mp3")  # an MP3 already: the file itself
    assert same.headers["accept-ranges"] == "bytes" and len(same.content) == noon["size"]
    assert rest.get("stream", id=noon["id"], format="wma").json()["subsonic-response"]["error"]["code"] == 0


def sessions_open(rest: Rest) -> float:
    text = httpx.get(f"{rest.live.url}/metrics", timeout=30).text
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("revenge_sessions_active ")))


def test_a_transcode_streams_as_it_encodes_and_stops_with_the_client(rest: Rest) -> None:
    (talk,) = [i["id"] for i in httpx.get(f"{rest.live.url}/api/v1/items", params={"type": "episode"},
                                          headers={"Authorization": f"Bearer {rest.key}"}).json()["items"]]
    params = {"v": "1.16.1", "c": "t", "apiKey": rest.key, "id": talk, "format": "mp3", "maxBitRate": "128"}
    with httpx.stream("GET", f"{rest.live.url}/rest/stream", params=params, timeout=30) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
        first = next(response.iter_raw())
    # 300 s at 128 kb/s is 4.8 MB: the first bytes came with the first chunk, not after the encode.
    assert 0 < len(first) < 500_000
    # The session the stream opened ends with it, long before its idle timeout (the stream may have been
    # sent whole into the socket buffers before the client went away).
    wait_until(lambda: sessions_open(rest) == 0, "the stream's session ended", timeout=10)
    assert rest.get("ping").json()["subsonic-response"]["status"] == "ok"  # the server carries on


def test_a_transcoded_stream_is_a_session_that_feeds_progress(rest: Rest) -> None:
    native = {"Authorization": f"Bearer {rest.admin_key}"}  # boss: no other test plays as boss
    (talk,) = [i["id"] for i in httpx.get(f"{rest.live.url}/api/v1/items", params={"type": "episode"},
                                          headers=native).json()["items"]]
    started = time.monotonic()
    response = rest.get("stream", id=talk, format="opus", maxBitRate=32, timeOffset=10, apiKey=rest.admin_key)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.headers["content-type"] == "audio/ogg"
    progress = httpx.get(f"{rest.live.url}/api/v1/playback/progress/{talk}", headers=native).json()
    (device,) = progress["devices"]
    assert device["device_id"] == "subsonic-tests"
    # From the offset on, never further than the wall time the stream took (300 s were sent in less).
    assert 10.0 <= device["position_seconds"] <= 10.0 + elapsed + 0.5
