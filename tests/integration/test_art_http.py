"""Cover art and lyrics over real HTTP against a scanned library of real files made here: pictures
attached by ffmpeg and by mutagen (ID3, FLAC, Ogg), folder images, a corrupt picture, ``.lrc``
sidecars, SYLT/USLT and Vorbis lyrics."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from revenge.library.art import ART_SIZES, art_id_for
from revenge.library.ids import item_id
from tests.artgen import (
    add_flac_picture,
    add_id3,
    add_ogg_pictures,
    attach_with_ffmpeg,
    picture_bytes,
    write_picture,
)
from tests.live import LiveServer, add_user, live_server, test_settings, wait_for_scan
from tests.mediagen import write_audio

RED, GREEN, BLUE, GREY = (220, 20, 20), (20, 200, 20), (20, 20, 220), (128, 128, 128)


@dataclass
class ArtLibrary:
    music: Path
    podcasts: Path
    books: Path
    pictures: dict[str, bytes] = field(default_factory=dict)  # by name: the bytes each picture has


def build(base: Path) -> ArtLibrary:
    lib = ArtLibrary(base / "music", base / "podcasts", base / "books")
    album = lib.music / "Album"
    lib.pictures["folder"] = write_picture(album / "cover.JPG", 900, 900, BLUE, "JPEG")
    write_picture(album / "back.jpg", 50, 50, GREY, "JPEG")  # not a folder image name

    # An embedded front cover (ffmpeg, as a tagger attaches one) wins over the folder image.
    write_audio(album / "01 embedded.mp3", samples=44_100, tags={"title": "Embedded"})
    lib.pictures["red"] = write_picture(base / "red.png", 600, 400, RED)
    attach_with_ffmpeg(album / "01 embedded.mp3", base / "red.png", {"lyrics": "[00:03.00]ffmpeg words"})
    # No picture of its own: the folder's; a synced .lrc sidecar.
    write_audio(album / "02 folder.flac", samples=44_100, tags={"title": "Folder"})
    (album / "02 folder.lrc").write_text("[ar:Band]\n[offset:100]\n[00:01.10]one\n[00:02.10][00:04.10]two\n",
                                         encoding="utf-8")
    # ID3 with a back cover first and the front cover second, SYLT and USLT.
    write_audio(album / "03 id3.mp3", samples=44_100, tags={"title": "Id3"})
    lib.pictures["green"] = picture_bytes(300, 300, GREEN)
    add_id3(album / "03 id3.mp3", pictures=((4, picture_bytes(40, 40, GREY)), (3, lib.pictures["green"])),
            sylt=[("hello", 500), ("world", 1500)], uslt="hello\nworld")
    # Only plain lyrics (USLT), and a sidecar that is plain too: the sidecar wins.
    write_audio(album / "04 plain.mp3", samples=44_100, tags={"title": "Plain"})
    add_id3(album / "04 plain.mp3", uslt="embedded words")
    (album / "04 plain.lrc").write_text("sidecar words\nsecond line\n", encoding="utf-8")

    # MP4 covr + ©lyr holding LRC text.
    single = lib.music / "Single"
    write_audio(single / "track.m4a", samples=44_100, tags={"title": "Mp4"})
    lib.pictures["mp4"] = write_picture(base / "mp4.png", 200, 200, GREEN)
    attach_with_ffmpeg(single / "track.m4a", base / "mp4.png", {"lyrics": "[00:00.50]mp4 line"})
    # Ogg Opus: METADATA_BLOCK_PICTURE (an "other" first, then the front cover), UNSYNCEDLYRICS.
    write_audio(single / "voice.opus", samples=48_000, rate=48_000, tags={"title": "Opus"})
    lib.pictures["opus"] = picture_bytes(128, 64, RED)
    add_ogg_pictures(single / "voice.opus", [(0, picture_bytes(10, 10, GREY)), (3, lib.pictures["opus"])],
                     lyrics="opus words")
    # No art, no lyrics.
    write_audio(single / "bare.wav", samples=44_100, tags={"title": "Bare"})
    # A corrupt picture in a FLAC picture block: the item has an art id, the picture is a 404.
    write_audio(lib.music / "Broken" / "bad.flac", samples=44_100, tags={"title": "Bad"})
    lib.pictures["corrupt"] = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 50
    add_flac_picture(lib.music / "Broken" / "bad.flac", 3, lib.pictures["corrupt"])
    # Discs: the album folder's image stands for the tracks of its CD1 folder.
    lib.pictures["discs"] = write_picture(lib.music / "Discs" / "folder.png", 100, 100, GREY)
    write_audio(lib.music / "Discs" / "CD1" / "01.mp3", samples=44_100, tags={"title": "Disc track"})

    # A tagged album whose second track alone has a picture: the album's and its artist's picture.
    cover = {"album": "Covered Album", "artist": "Covered Artist", "album_artist": "Covered Artist"}
    write_audio(lib.music / "Covered" / "01.mp3", samples=22_050, tags={**cover, "title": "Bare one",
                                                                         "track": "1"})
    write_audio(lib.music / "Covered" / "02.mp3", samples=22_050, tags={**cover, "title": "Covered two",
                                                                         "track": "2"})
    lib.pictures["covered"] = picture_bytes(60, 60, BLUE)
    add_id3(lib.music / "Covered" / "02.mp3", pictures=((3, lib.pictures["covered"]),))
    write_audio(lib.music / "Plain" / "01.mp3", samples=22_050,
                tags={"album": "Plain Album", "artist": "Plain Artist", "title": "Plain one"})

    # A podcast episode and a folder audiobook, each with a folder image.
    lib.pictures["show"] = write_picture(lib.podcasts / "Show" / "Folder.PNG", 64, 64, RED)
    write_audio(lib.podcasts / "Show" / "ep1.mp3", samples=44_100, tags={"title": "Episode"})
    book = lib.books / "Author" / "Book"
    lib.pictures["book"] = write_picture(book / "front.webp", 500, 700, BLUE, "WEBP")
    for n in (1, 2):
        write_audio(book / f"Part {n}.mp3", samples=30_000, tags={"title": f"Part {n}"})
    return lib


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ArtLibrary:
    return build(tmp_path_factory.mktemp("artlib"))


@pytest.fixture(scope="module")
def server(lib: ArtLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    data = tmp_path_factory.mktemp("artdata")
    key = add_user(data, "admin")  # the first user is an admin: it may start scans
    settings = test_settings(data, library=(lib.music,), podcasts=(lib.podcasts,), audiobooks=(lib.books,))
    with live_server(settings) as live:
        yield live, key


@pytest.fixture(scope="module")
def client(server: tuple[LiveServer, str]) -> Iterator[httpx.Client]:
    live, key = server
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


def track(rel: str) -> str:
    return item_id("track", rel)


def art_of(client: httpx.Client, uid: str) -> Any:
    return client.get(f"/api/v1/items/{uid}").json()["art_id"]


def test_albums_and_artists_carry_their_picture(client: httpx.Client, lib: ArtLibrary) -> None:
    covered = art_id_for(lib.pictures["covered"])
    albums = {a["name"]: a for a in client.get("/api/v1/albums").json()["albums"]}
    assert albums["Covered Album"]["art_id"] == covered  # the first track with a picture
    assert albums["Plain Album"]["art_id"] is None
    album = client.get(f"/api/v1/albums/{albums['Covered Album']['id']}").json()
    assert album["art_id"] == covered
    assert [t["art_id"] for t in album["discs"][0]["tracks"]] == [None, covered]
    artists = {a["name"]: a for a in client.get("/api/v1/artists").json()["artists"]}
    assert artists["Covered Artist"]["art_id"] == covered and artists["Plain Artist"]["art_id"] is None
    artist = client.get(f"/api/v1/artists/{artists['Covered Artist']['id']}").json()
    assert artist["art_id"] == covered and [a["art_id"] for a in artist["albums"]] == [covered]
    found = client.get("/api/v1/search", params={"q": "covered"}).json()
    assert [a["art_id"] for a in found["artists"]] == [covered]
    assert [a["art_id"] for a in found["albums"]] == [covered]
    assert [(t["title"], t["art_id"]) for t in found["tracks"]] == [("Covered two", covered),
                                                                    ("Bare one", None)]  # title first
    assert client.get(f"/api/v1/art/{covered}").status_code == 200


def image(response: httpx.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def test_items_carry_the_id_of_the_picture_that_wins(client: httpx.Client, lib: ArtLibrary) -> None:
    p = lib.pictures
    assert art_of(client, track("Album/01 embedded.mp3")) == art_id_for(p["red"])  # embedded over folder
    assert art_of(client, track("Album/02 folder.flac")) == art_id_for(p["folder"])
    assert art_of(client, track("Album/03 id3.mp3")) == art_id_for(p["green"])  # front cover, not the first
    assert art_of(client, track("Single/track.m4a")) == art_id_for(p["mp4"])
    assert art_of(client, track("Single/voice.opus")) == art_id_for(p["opus"])
    assert art_of(client, track("Single/bare.wav")) is None
    assert art_of(client, track("Broken/bad.flac")) == art_id_for(p["corrupt"])
    assert art_of(client, track("Discs/CD1/01.mp3")) == art_id_for(p["discs"])
    assert art_of(client, item_id("episode", "Show/ep1.mp3")) == art_id_for(p["show"])
    assert art_of(client, item_id("audiobook", "Author/Book")) == art_id_for(p["book"])


def test_lists_carry_art_ids_too(client: httpx.Client, lib: ArtLibrary) -> None:
    items = client.get("/api/v1/items", params={"limit": 500}).json()["items"]
    by_id = {i["id"]: i["art_id"] for i in items}
    assert by_id[track("Album/02 folder.flac")] == art_id_for(lib.pictures["folder"])
    assert by_id[track("Single/bare.wav")] is None


@pytest.mark.parametrize("size", ART_SIZES)
def test_every_size_fits_the_box_keeps_the_shape_and_never_enlarges(client: httpx.Client, lib: ArtLibrary,
                                                                     size: int) -> None:
    response = client.get(f"/api/v1/art/{art_id_for(lib.pictures['red'])}", params={"size": size})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    picture = image(response)
    assert picture.format == "JPEG"
    expected = (min(size, 600), round(min(size, 600) * 400 / 600))
    assert abs(picture.size[0] - expected[0]) <= 1 and abs(picture.size[1] - expected[1]) <= 1
    red, green, blue = picture.convert("RGB").getpixel((picture.size[0] // 2, picture.size[1] // 2))
    assert red > 180 and green < 60 and blue < 60


def test_webp_by_accept_with_its_own_etag(client: httpx.Client, lib: ArtLibrary) -> None:
    url = f"/api/v1/art/{art_id_for(lib.pictures['book'])}?size=256"
    webp = client.get(url, headers={"Accept": "image/avif,image/webp,*/*;q=0.8"})
    jpeg = client.get(url, headers={"Accept": "*/*"})
    assert webp.headers["content-type"] == "image/webp" and image(webp).format == "WEBP"
    assert jpeg.headers["content-type"] == "image/jpeg" and image(jpeg).format == "JPEG"
    assert image(webp).size == (183, 256)  # 500 × 700 into 256 × 256
    assert webp.headers["etag"] != jpeg.headers["etag"]
    assert webp.headers["vary"] == "Accept"


def test_strong_etag_immutable_and_304(client: httpx.Client, lib: ArtLibrary) -> None:
    art = art_id_for(lib.pictures["folder"])
    first = client.get(f"/api/v1/art/{art}?size=128")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/") and art in etag
    assert "immutable" in first.headers["cache-control"]
    again = client.get(f"/api/v1/art/{art}?size=128")
    assert again.content == first.content and again.headers["etag"] == etag
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        not_modified = client.get(f"/api/v1/art/{art}?size=128", headers={"If-None-Match": header})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag
    other_size = client.get(f"/api/v1/art/{art}?size=64", headers={"If-None-Match": etag})
    assert other_size.status_code == 200 and other_size.headers["etag"] != etag


def test_resized_pictures_are_kept_on_disk(client: httpx.Client, server: tuple[LiveServer, str],
                                           lib: ArtLibrary) -> None:
    art = art_id_for(lib.pictures["green"])
    client.get(f"/api/v1/art/{art}?size=800", headers={"Accept": "image/webp"}).raise_for_status()
    cached = server[0].settings.data_dir / "art-cache" / f"{art}-800.webp"
    assert cached.is_file() and image(httpx.Response(200, content=cached.read_bytes())).format == "WEBP"
    assert not list(cached.parent.glob("*.tmp"))


def test_a_corrupt_picture_is_a_404_and_the_server_goes_on(client: httpx.Client, lib: ArtLibrary) -> None:
    response = client.get(f"/api/v1/art/{art_id_for(lib.pictures['corrupt'])}?size=64")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "art_unreadable", "message": "this picture cannot be decoded",
                                        "field": "art_id"}
    assert client.get(f"/api/v1/art/{art_id_for(lib.pictures['opus'])}?size=64").status_code == 200


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/api/v1/art/aaaaaaaaaaaaaaaaaaaaaaaa?size=64", 404, "art_id"),  # well formed, unknown
    ("/api/v1/art/AAAAAAAAAAAAAAAAAAAAAAAA?size=64", 400, "art_id"),
    ("/api/v1/art/..%5C..%5Cetc%5Cpasswd?size=64", 400, "art_id"),
    ("/api/v1/art/aaaaaaaaaaaaaaaaaaaaaaa?size=64", 400, "art_id"),  # 23 characters
])
def test_bad_and_unknown_art_ids(client: httpx.Client, path: str, status: int, field: str) -> None:
    response = client.get(path)
    assert response.status_code == status and response.json()["error"]["field"] == field


@pytest.mark.parametrize("size", ["100", "0", "-1", "64.5", "abc", "99999999999"])
def test_sizes_outside_the_set_are_400(client: httpx.Client, lib: ArtLibrary, size: str) -> None:
    response = client.get(f"/api/v1/art/{art_id_for(lib.pictures['red'])}", params={"size": size})
    assert response.status_code == 400 and response.json()["error"]["field"] == "size"


def test_art_and_lyrics_need_a_key(server: tuple[LiveServer, str], lib: ArtLibrary) -> None:
    live = server[0]
    for path in (f"/api/v1/art/{art_id_for(lib.pictures['red'])}",
                 f"/api/v1/items/{track('Album/02 folder.flac')}/lyrics"):
        assert httpx.get(live.url + path).status_code == 401


def lyrics(client: httpx.Client, uid: str) -> Any:
    return client.get(f"/api/v1/items/{uid}/lyrics").json()


def test_synced_sidecar_with_offset_and_several_stamps(client: httpx.Client) -> None:
    body = lyrics(client, track("Album/02 folder.flac"))
    assert body["synced"] is True and body["source"] == "sidecar" and body["metadata"] == {"ar": "Band"}
    assert body["lines"] == [{"start_ms": 1000, "text": "one"}, {"start_ms": 2000, "text": "two"},
                             {"start_ms": 4000, "text": "two"}]


def test_sylt_wins_over_uslt(client: httpx.Client) -> None:
    body = lyrics(client, track("Album/03 id3.mp3"))
    assert body["synced"] is True and body["source"] == "embedded" and body["language"] == "eng"
    assert body["lines"] == [{"start_ms": 500, "text": "hello"}, {"start_ms": 1500, "text": "world"}]


def test_plain_lyrics_sidecar_before_embedded(client: httpx.Client) -> None:
    body = lyrics(client, track("Album/04 plain.mp3"))
    assert body["synced"] is False and body["source"] == "sidecar"
    assert body["lines"] == [{"start_ms": None, "text": "sidecar words"},
                             {"start_ms": None, "text": "second line"}]


def test_embedded_lyrics_of_mp4_ffmpeg_mp3_and_opus(client: httpx.Client) -> None:
    mp4 = lyrics(client, track("Single/track.m4a"))
    assert mp4["synced"] is True and mp4["lines"] == [{"start_ms": 500, "text": "mp4 line"}]
    mp3 = lyrics(client, track("Album/01 embedded.mp3"))  # FFmpeg writes it as TXXX:USLT
    assert mp3["synced"] is True and mp3["lines"] == [{"start_ms": 3000, "text": "ffmpeg words"}]
    opus = lyrics(client, track("Single/voice.opus"))
    assert opus["synced"] is False and opus["lines"] == [{"start_ms": None, "text": "opus words"}]


def test_no_lyrics_is_a_404(client: httpx.Client) -> None:
    response = client.get(f"/api/v1/items/{track('Single/bare.wav')}/lyrics")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_lyrics"
    assert client.get("/api/v1/items/zzzzzzzzzzzzzzzz/lyrics").status_code == 404
    assert client.get("/api/v1/items/NOPE/lyrics").status_code == 400


def test_a_changed_folder_image_gets_a_new_id_after_a_scan(tmp_path: Path) -> None:
    """Its own library: the id follows the picture's bytes, and the old id stops resolving."""
    music = tmp_path / "music"
    write_audio(music / "A" / "t.mp3", samples=44_100, tags={"title": "T"})
    old = write_picture(music / "A" / "cover.jpg", 80, 80, RED, "JPEG")
    data = tmp_path / "data"
    key = add_user(data, "admin")
    with live_server(test_settings(data, library=(music,))) as live, \
            httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        uid = item_id("track", "A/t.mp3")
        assert art_of(c, uid) == art_id_for(old)
        new = write_picture(music / "A" / "cover.jpg", 80, 80, GREEN, "JPEG")
        assert c.post("/api/v1/library/scan").status_code == 202
        wait_for_scan(live, time.monotonic() + 60)
        assert art_of(c, uid) == art_id_for(new) != art_id_for(old)
        assert c.get(f"/api/v1/art/{art_id_for(new)}?size=64").status_code == 200
        assert c.get(f"/api/v1/art/{art_id_for(old)}?size=64").status_code == 404  # never resized: gone


def test_files_with_an_attached_picture_still_play(client: httpx.Client) -> None:
    """The cover is a video stream to FFmpeg: the probe, HLS and direct play use the audio stream only."""
    for rel in ("Album/01 embedded.mp3", "Single/track.m4a"):
        uid = track(rel)
        assert client.get(f"/api/v1/items/{uid}").json()["duration_ms"] == 1000
        segment = client.get(f"/api/v1/stream/{uid}/aac-128/segment0.m4s")
        assert segment.status_code == 200 and len(segment.content) > 1000
        assert client.get(f"/api/v1/stream/{uid}/direct").status_code == 200
