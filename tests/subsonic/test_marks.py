"""Stars and ratings through a real client: star songs, albums and artists, list them, rate albums and
see the starred and highest album lists; unknown ids are 70."""

from __future__ import annotations

from collections.abc import Iterator

import libopensonic
import pytest

from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import validate
from tests.subsonic.test_endpoints import both


@pytest.fixture
def client(rest: Rest) -> Iterator[libopensonic.Connection]:
    conn = libopensonic.Connection("http://127.0.0.1", port=rest.port, api_key=rest.key)
    yield conn
    conn.cleanup()


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
