"""Album playback sessions over real HTTP, on the embedded store and on Redis: the session answers the
album's signed playlist, heartbeats on the album timeline land on each track (a track played through
counts once, the next one is at its offset), the cap holds, stop ends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, running_redis

SESSIONS = "/api/v1/playback/sessions"
CAPS = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}
RATE = 8000
TRACK_S = 32.0  # past the 30 s a track needs before a listen can count
PACE_S = 1.5  # the client's pace between two heartbeats; at 16x that is 24 s of listening


@dataclass
class Media:
    music: Path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    music = tmp_path_factory.mktemp("album-session") / "music"
    for number in (1, 2):
        write_audio(music / "Pair" / f"0{number}.flac", seconds=TRACK_S, rate=RATE, channels=1,
                    tags={"album": "Pair", "album_artist": "Duo", "artist": "Duo", "title": f"T{number}",
                          "track": str(number)})
    write_audio(music / "single.flac", seconds=3, rate=RATE, channels=1, tags={"title": "Single"})
    return Media(music)


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "embedded":
        yield None
        return
    with running_redis(tmp_path / "redis") as server:
        assert isinstance(server, RedisServer)
        yield server.url


def start(client: httpx.Client, device_id: str, **body: Any) -> httpx.Response:
    return client.post(SESSIONS, json={**body, "device_id": device_id, "capabilities": CAPS})


def beat(client: httpx.Client, session_id: str, position: float, **extra: Any) -> dict[str, Any]:
    body = {"position_seconds": position, "state": "playing", "playback_rate": 16, **extra}
    answer = client.post(f"{SESSIONS}/{session_id}/heartbeat", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_album_session_puts_progress_on_each_track(media: Media, tmp_path: Path,
                                                      store: str | None) -> None:
    data = tmp_path / "data"
    key = add_user(data, "listener")
    extra = {"store": store} if store else {}
    settings = settings_for(data, library=(media.music,), sessions_per_user=2, **extra)
    with live_server(settings) as live, httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        album = next(a for a in client.get("/api/v1/albums").json()["albums"] if a["name"] == "Pair")
        timeline = client.get(f"/api/v1/albums/{album['id']}/timeline").json()["tracks"]
        first, second = (t["item_id"] for t in timeline)
        join = timeline[1]["start_seconds"]

        started = start(client, "desk", album_id=album["id"])
        assert started.status_code == 201, started.text
        session = started.json()
        assert session["kind"] == "album" and session["item_id"] == album["id"]
        assert session["decision"] == "hls" and session["resume_seconds"] == 0
        assert session["url"].startswith(f"/api/v1/albums/{album['id']}/playlist.m3u8?t=")
        # The signed URL plays with no header (as a player follows it).
        playlist = httpx.get(live.url + session["url"])
        assert playlist.status_code == 200 and "#EXT-X-STREAM-INF" in playlist.text
        sid = session["session_id"]

        t0 = time.monotonic()
        answer = beat(client, sid, 2.0, event="start")
        assert answer["track"] == {"item_id": first, "offset_seconds": 2.0}
        assert answer["progress"]["item_id"] == first
        time.sleep(max(0.0, PACE_S - (time.monotonic() - t0)))  # the client's pace, not a wait for state
        answer = beat(client, sid, join + 5.0)
        assert answer["position_seconds"] == join + 5.0
        assert answer["track"] == {"item_id": second, "offset_seconds": 5.0}
        assert answer["progress"]["item_id"] == second
        assert answer["progress"]["position_seconds"] == 5.0

        progress = client.get(f"/api/v1/playback/progress/{first}").json()
        assert progress["play_count"] == 1 and progress["completed"] is True
        later = client.get(f"/api/v1/playback/progress/{second}").json()
        assert later["play_count"] == 0 and later["position_seconds"] == 5.0
        # More of the second track: the first is not counted again.
        beat(client, sid, join + 6.0)
        assert client.get(f"/api/v1/playback/progress/{first}").json()["play_count"] == 1
        # A seek back into the first track starts a listen there; the second keeps its place.
        answer = beat(client, sid, 3.0, event="seek")
        assert answer["track"] == {"item_id": first, "offset_seconds": 3.0}
        assert client.get(f"/api/v1/playback/progress/{first}").json()["play_count"] == 1
        assert client.get(f"/api/v1/playback/progress/{second}").json()["position_seconds"] == 6.0

        # The cap counts album sessions like any other; the same device replaces its own.
        single = next(i for i in client.get("/api/v1/items").json()["items"] if i["title"] == "Single")
        other = start(client, "phone", item_id=single["id"])
        assert other.status_code == 201, other.text
        assert start(client, "car", album_id=album["id"]).status_code == 429
        again = start(client, "desk", album_id=album["id"], start_seconds=join)
        assert again.status_code == 201 and again.json()["resume_seconds"] == join
        assert client.get(f"{SESSIONS}/{sid}").status_code == 404  # replaced
        sid = again.json()["session_id"]
        assert client.get(f"{SESSIONS}/{sid}").json()["kind"] == "album"

        assert client.delete(f"{SESSIONS}/{sid}").status_code == 204
        assert client.post(f"{SESSIONS}/{sid}/heartbeat",
                           json={"position_seconds": 1, "state": "playing"}).status_code == 404


def test_bad_album_starts_name_the_field(media: Media, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add_user(data, "listener")
    with live_server(settings_for(data, library=(media.music,))) as live:
        unknown = "a" * 16
        for body, status in [({"album_id": "nope"}, 400), ({"album_id": 7}, 400),
                             ({"album_id": unknown}, 404), ({"album_id": unknown, "item_id": unknown}, 400)]:
            answer = httpx.post(live.url + SESSIONS, headers={"Authorization": f"Bearer {key}"},
                                json={**body, "device_id": "desk", "capabilities": CAPS})
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["error"]["field"] == "album_id"
