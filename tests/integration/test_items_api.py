"""The items API over real HTTP (uvicorn on a free port) against a real scanned library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.library.ids import item_id
from tests.libgen import Library, build_library, keyed_client, serve_library
from tests.live import LiveServer, add_user, live_server


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_library(tmp_path_factory.mktemp("library"))


@pytest.fixture(scope="module")
def server(lib: Library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with serve_library(lib, tmp_path_factory.mktemp("data")) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: tuple[LiveServer, str]) -> Iterator[httpx.Client]:
    with keyed_client(*server) as c:
        yield c


def all_pages(client: httpx.Client, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/items", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 100


def test_healthz_shows_the_finished_scan(server: tuple[LiveServer, str]) -> None:
    live, _ = server
    scan = httpx.get(live.url + "/healthz").json()["scan"]
    assert scan["running"] is False and scan["failed"] == 1 and scan["items_added"] == 8


def test_list_has_every_item_and_pages_through_all_of_them_exactly_once(client: httpx.Client,
                                                                        lib: Library) -> None:
    everything = client.get("/api/v1/items", params={"limit": 500}).json()
    assert everything["next_cursor"] is None
    want = {item_id(e.type, rel) for rel, e in lib.items.items()}  # type: ignore[arg-type]
    assert {i["id"] for i in everything["items"]} == want
    for size in (1, 3, 7, 8):
        paged, pages = all_pages(client, limit=size)
        assert [i["id"] for i in paged] == [i["id"] for i in everything["items"]]
        assert pages == -(-len(want) // size)  # a full last page already says there is no next one
    # The stable order groups types: books, then episodes, then tracks (by artist, album, disc, track).
    types = [i["type"] for i in everything["items"]]
    assert types == sorted(types, key=["audiobook", "episode", "track"].index)
    titles = [i["title"] for i in everything["items"] if i["type"] == "track"]
    assert titles.index("Alpha Song") + 1 == titles.index("Beta Song")


def test_filter_by_type(client: httpx.Client) -> None:
    for item_type, count in (("track", 5), ("episode", 1), ("audiobook", 2)):
        items, _ = all_pages(client, type=item_type, limit=2)
        assert len(items) == count and {i["type"] for i in items} == {item_type}


def test_text_query_matches_titles_artists_albums_case_insensitively(client: httpx.Client) -> None:
    def titles(q: str, **extra: str) -> set[str]:
        return {i["title"] for i in all_pages(client, q=q, **extra)[0]}

    assert titles("alpha") == {"Alpha Song"}
    assert titles("ARTIST A ALBUM") == {"Alpha Song", "Beta Song"}  # every word must match
    assert titles("album x beta") == {"Beta Song"}
    assert titles("jazz") == {"Gamma Tune"}
    assert titles("raw rec") == {"raw recording"}
    assert titles("great", type="audiobook") == {"The Great Book"}
    assert titles("great", type="track") == set()
    assert titles("100%") == set() and titles("_") == set()  # LIKE wildcards are literal


def test_one_item_has_the_full_shape(client: httpx.Client, lib: Library) -> None:
    rel = "Artist A/Album X/01 Alpha.flac"
    body = client.get(f"/api/v1/items/{item_id('track', rel)}").json()
    body.pop("progress", None)  # the caller's progress: the progress tests check it
    generated = lib.items[rel].generated[0]
    assert body == {
        "id": item_id("track", rel), "type": "track", "title": "Alpha Song", "artist": "Artist A",
        "album": "Album X", "album_artist": "Artist A", "track_number": 1, "disc_number": 1, "genre": "Rock",
        "duration_ms": generated.samples * 1000 // generated.sample_rate,
        "codec": "flac", "container": "flac",
        "sample_rate": 44_100, "channels": 2, "bit_rate": body["bit_rate"], "lossless": True, "files": 1,
        "chapter_count": 0, "chapters": [], "art_id": None,
    }
    assert body["bit_rate"] > 0


def test_a_book_shows_its_chapters(client: httpx.Client, lib: Library) -> None:
    rel = "Author Name/The Great Book"
    body = client.get(f"/api/v1/items/{item_id('audiobook', rel)}").json()
    assert body["type"] == "audiobook" and body["files"] == 3 and body["codec"] == "mp3"
    assert [c["title"] for c in body["chapters"]] == ["Opening", "Chapter 2", "Finale"]
    assert [c["index"] for c in body["chapters"]] == [0, 1, 2]
    assert body["chapters"][0]["start_ms"] == 0 and body["chapters"][-1]["end_ms"] == body["duration_ms"]
    assert body["duration_ms"] == lib.items[rel].samples * 1000 // 44_100
    listed = client.get("/api/v1/items", params={"type": "audiobook", "q": "great"}).json()["items"][0]
    assert "chapters" not in listed and listed["chapter_count"] == 3


def test_failures_are_listed(client: httpx.Client) -> None:
    body = client.get("/api/v1/library/failures").json()
    assert body["total"] == 1
    (failure,) = body["failures"]
    assert failure["path"] == "Broken/corrupt.flac" and failure["type"] == "track" and failure["reason"]
    assert client.get("/api/v1/library/failures", params={"limit": "0"}).status_code == 400


def test_unknown_and_malformed_ids(client: httpx.Client) -> None:
    missing = client.get("/api/v1/items/" + "a" * 16)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for bad in ("A" * 16, "a" * 15, "a" * 17, "a" * 15 + "1", "a" * 15 + "-"):
        response = client.get(f"/api/v1/items/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"]["field"] == "item_id"


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"), ({"limit": "1.5"}, "limit"), ({"type": "album"}, "type"),
    ({"q": "x" * 201}, "q"), ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "eyJhIjoxfQ"}, "cursor"),
    ({"cursor": "%%%"}, "cursor"),
])
def test_bad_list_parameters_are_400_naming_the_field(client: httpx.Client, params: dict[str, str],
                                                      field: str) -> None:
    response = client.get("/api/v1/items", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_limit_bounds_are_accepted(client: httpx.Client) -> None:
    assert len(client.get("/api/v1/items", params={"limit": "1"}).json()["items"]) == 1
    assert len(client.get("/api/v1/items", params={"limit": "500"}).json()["items"]) == 8
    assert len(client.get("/api/v1/items").json()["items"]) == 8  # default 50


@pytest.mark.parametrize("path", ["/api/v1/items", "/api/v1/items/" + "a" * 16, "/api/v1/library/failures"])
def test_api_routes_require_a_key(server: tuple[LiveServer, str], path: str) -> None:
    live, key = server
    for headers in ({}, {"Authorization": "Bearer rv_wrong"}, {"Authorization": f"Basic {key}"}):
        response = httpx.get(live.url + path, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    # the query-string key is for media routes only
    assert httpx.get(live.url + path, params={"api_key": key}).status_code == 401


def test_items_appear_in_a_fresh_server_with_a_second_user(lib: Library, tmp_path: Path) -> None:
    """A second data dir scans the same library to the same ids (ids derive from paths only)."""
    key = add_user(tmp_path, "other")
    with live_server(lib.settings(tmp_path)) as live:
        body = httpx.get(live.url + "/api/v1/items", params={"limit": 500},
                         headers={"Authorization": f"Bearer {key}"}).json()
    want = {item_id(e.type, rel) for rel, e in lib.items.items()}  # type: ignore[arg-type]
    assert {i["id"] for i in body["items"]} == want
