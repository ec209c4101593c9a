"""What a user does through a Subsonic client lands in the native services: a scrobble is a listen
record, now playing is seen by getNowPlaying, the play queue is the shared queue (positions in ms), a
bookmark is the caller's progress; and the other way round."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import libopensonic
import pytest

from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import validate


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


def songs(rest: Rest) -> list[dict[str, object]]:
    found = validate("search3", rest.get("search3", query="", songCount=10).json())["song"]
    return sorted(found, key=lambda s: str(s["title"]))  # Dawn, Noon, Quiet


def test_now_playing_then_scrobble_records_a_listen(rest: Rest, client: libopensonic.Connection,
                                                    native: httpx.Client) -> None:
    dawn = songs(rest)[0]
    assert client.scrobble(str(dawn["id"]), submission=False)
    # This player's entry (the streams of other tests, sessions of their devices, are listed too).
    (entry,) = [e for e in client.get_now_playing() if e.player_name == "subsonic-py-opensonic"]
    assert entry.id == dawn["id"] and entry.username == "ann"
    started = (int(time.time()) - 60) * 1000
    assert client.scrobble(str(dawn["id"]), submission=True, listen_time=started // 1000)  # it sends ms
    again = native.post("/api/v1/playback/scrobble", json={"item_id": dawn["id"], "started_at": started,
                                                           "listened_seconds": 2})
    assert again.status_code == 200 and again.json()["duplicate"] is True  # the Subsonic one came first
    bad = rest.get("scrobble", id=dawn["id"], time=str(int(time.time() * 1000) + 86_400_000))
    assert bad.json()["subsonic-response"]["error"]["code"] == 0


def test_play_queue_round_trip_and_the_native_queue_sees_it(rest: Rest, client: libopensonic.Connection,
                                                            native: httpx.Client) -> None:
    dawn, noon, quiet = (str(s["id"]) for s in songs(rest))
    assert client.save_play_queue([noon, dawn, quiet], current=dawn, position=1234)
    queue = client.get_play_queue()
    assert [e.id for e in queue.entry or []] == [noon, dawn, quiet]
    assert queue.current == dawn and queue.position == 1234 and queue.username == "ann"
    assert queue.changed_by == "subsonic-py-opensonic"
    shared = native.get("/api/v1/queue").json()
    assert shared["items"] == [noon, dawn, quiet] and shared["current_index"] == 1
    assert shared["position_seconds"] == pytest.approx(1.234)
    assert client.save_play_queue([quiet])
    assert [e.id for e in client.get_play_queue().entry or []] == [quiet]
    unknown = rest.get("savePlayQueue", id="aaaaaaaaaaaaaaaa")
    assert unknown.json()["subsonic-response"]["error"]["code"] == 70


def test_bookmarks_are_the_callers_progress(rest: Rest, client: libopensonic.Connection,
                                            native: httpx.Client) -> None:
    (talk,) = [i["id"] for i in native.get("/api/v1/items", params={"type": "episode"}).json()["items"]]
    assert client.create_bookmark(talk, 31_500)
    (bookmark,) = [b for b in client.get_bookmarks() if b.entry.id == talk]
    assert bookmark.position == 31_500 and bookmark.username == "ann" and bookmark.entry.title == "Long Talk"
    progress = native.get(f"/api/v1/playback/progress/{talk}").json()
    assert progress["position_seconds"] == pytest.approx(31.5)
    native.put(f"/api/v1/playback/progress/{talk}", json={  # another device moves on: the bookmark follows
        "position_seconds": 33.0, "duration_seconds": 300.0, "event": "pause", "device_id": "phone",
        "client_ts": int(time.time() * 1000)}).raise_for_status()
    assert [b.position for b in client.get_bookmarks() if b.entry.id == talk] == [33_000]
    assert client.delete_bookmark(talk)
    assert all(b.entry.id != talk for b in client.get_bookmarks())


def test_the_recent_album_list_follows_the_callers_plays(rest: Rest, native: httpx.Client) -> None:
    quiet = str(songs(rest)[2]["id"])  # on "Alone"
    native.put(f"/api/v1/playback/progress/{quiet}", json={
        "position_seconds": 0.0, "duration_seconds": 1.0, "event": "start", "device_id": "phone",
        "client_ts": int(time.time() * 1000)}).raise_for_status()
    albums = validate("getAlbumList2", rest.get("getAlbumList2", type="recent").json())["album"]
    assert albums[0]["name"] == "Alone"  # the latest play first (transcoded streams played others)
    # A 1 s track never counts as a play (the progress rules), so none is frequent; the ranking is the
    # one /api/v1/albums?sort=frequent uses, tested there.
    assert validate("getAlbumList2", rest.get("getAlbumList2", type="frequent").json()).get("album", []) == []
    other = validate("getAlbumList2", rest.get("getAlbumList2", type="recent", apiKey=rest.admin_key).json())
    assert other.get("album", []) == []  # the caller's plays, not everyone's
