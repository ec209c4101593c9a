"""Now playing across instances: two apps on one real redis-server (``store = redis://…``), a player
tells instance A what it plays, a client of instance B lists it (getNowPlaying), through the real
clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import libopensonic
import libsonic
import pytest

from tests.integration.test_shared_instances import cli
from tests.live import LiveServer, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)
from tests.subsonic.schemas import validate
from tests.waits import wait_until


def port_of(live: LiveServer) -> int:
    return int(urlsplit(live.url).port or 0)


Pair = tuple[LiveServer, LiveServer, str]  # instance A, instance B, the admin's API key


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[Pair]:  # noqa: F811
    music = tmp_path / "music"
    write_audio(music / "long.flac", seconds=120, rate=8000, channels=1, tags={"title": "Long One"})
    out = cli("user", "add", "boss", data=tmp_path / "cli", store=redis_server.url)
    key = out.strip().splitlines()[-1]
    common = {"library": (music,), "store": redis_server.url}
    with live_server(settings_for(tmp_path / "a", **common)) as a, \
            live_server(settings_for(tmp_path / "b", **common)) as b:
        yield a, b, key


def test_instance_b_lists_what_a_player_started_on_instance_a(pair: Pair) -> None:
    a, b, key = pair
    params = {"v": "1.16.1", "c": "tests", "f": "json", "apiKey": key}
    (song,) = validate("search3", httpx.get(a.url + "/rest/search3", params={**params, "query": ""},
                                            timeout=30).json())["song"]
    on_a = libopensonic.Connection("http://127.0.0.1", port=port_of(a), api_key=key)
    on_b = libopensonic.Connection("http://127.0.0.1", port=port_of(b), api_key=key)
    try:
        assert on_b.get_now_playing() in (None, [])
        assert on_a.scrobble(song["id"], submission=False)
        (entry,) = on_b.get_now_playing()
        assert entry.id == song["id"] and entry.username == "boss"
        assert entry.player_name == "subsonic-py-opensonic"
        body = validate("getNowPlaying", httpx.get(b.url + "/rest/getNowPlaying", params=params,
                                                   timeout=30).json())
        assert [(e["title"], e["minutesAgo"]) for e in body["entry"]] == [("Long One", 0)]
        # The other client, on B, a second player: both listed on A.
        classic = libsonic.Connection("http://127.0.0.1", "boss", key, port=port_of(b), serverPath="/rest",
                                      legacyAuth=True)  # the API key as the password
        assert classic.scrobble(song["id"], submission=False)
        players = {e.player_name for e in on_a.get_now_playing()}
        assert players == {"subsonic-py-opensonic", "subsonic-py-sonic"}
    finally:
        on_a.cleanup()
        on_b.cleanup()


def test_playback_sessions_started_on_a_are_now_playing_on_b(pair: Pair) -> None:
    """A session (the web player's, or a Subsonic ``stream`` transcode's) is what its device plays."""
    a, b, key = pair
    params = {"v": "1.16.1", "c": "tests", "f": "json", "apiKey": key}
    (song,) = httpx.get(a.url + "/rest/search3", params={**params, "query": ""}, timeout=30).json()[
        "subsonic-response"]["searchResult3"]["song"]

    def players() -> set[str]:
        body = validate("getNowPlaying", httpx.get(b.url + "/rest/getNowPlaying", params=params,
                                                   timeout=30).json())
        return {e["playerName"] for e in body.get("entry", []) if e["id"] == song["id"]}

    started = httpx.post(a.url + "/api/v1/playback/sessions", headers={"Authorization": f"Bearer {key}"},
                         json={"item_id": song["id"], "device_id": "kitchen",
                               "capabilities": {"codecs": ["flac"], "containers": ["flac"], "hls": False}},
                         timeout=30)
    assert started.status_code == 201, started.text
    wait_until(lambda: players() == {"kitchen"}, "B to list the web player's session")
    with httpx.stream("GET", a.url + "/rest/stream", params={**params, "id": song["id"], "format": "mp3"},
                      timeout=30) as response:
        assert response.status_code == 200 and next(response.iter_bytes())
        wait_until(lambda: players() == {"kitchen", "subsonic-tests"}, "B to list the transcoded stream")
