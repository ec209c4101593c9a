"""Playback sessions over real HTTP (uvicorn, generated media, SQLite store in memory sessions; and the
Redis store shared by two instances): decisions, validation, ownership, cap, heartbeats → progress,
idle timeout."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.security import secrets as stream_secrets
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.waits import wait_until

SESSIONS = "/api/v1/playback/sessions"
# Short, for the idle tests, but far above one heartbeat's gap (0.25 s plus its latency on a busy machine).
IDLE_S = 2.0
FLAC_CAPS = {"codecs": ["flac"], "containers": ["flac"], "max_bitrate": None, "hls": False}
AAC_ONLY = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}
CHROME = {"codecs": ["aac", "opus", "flac", "mp3"], "containers": ["mp4", "ogg", "webm", "mp3"], "hls": True}
SAFARI_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.4 Safari/605.1.15")


@dataclass
class Library:
    music: Path
    podcasts: Path


@dataclass
class Env:
    live: LiveServer
    keys: dict[str, str]
    track: str  # item ids
    episode: str

    def client(self, user: str, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.live.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[user]}", **headers})


def make_library(base: Path) -> Library:
    lib = Library(base / "music", base / "podcasts")
    write_audio(lib.music / "song.flac", seconds=4, rate=44_100, channels=2, kind="music",
                tags={"title": "Song"})
    write_audio(lib.podcasts / "show" / "ep1.flac", seconds=600, rate=8_000, channels=1, kind="silence",
                tags={"title": "Episode"})
    return lib


def item_ids(live: LiveServer, key: str) -> tuple[str, str]:
    items = httpx.get(live.url + "/api/v1/items", headers={"Authorization": f"Bearer {key}"},
                      timeout=10).json()["items"]
    by_type = {i["type"]: i["id"] for i in items}
    return by_type["track"], by_type["episode"]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return make_library(tmp_path_factory.mktemp("sessions-media"))


@pytest.fixture(scope="module")
def env(library: Library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data = tmp_path_factory.mktemp("sessions-data")
    keys = {name: add_user(data, name) for name in ("alice", "bob", "carol", "dave")}
    settings = settings_for(data, library=(library.music,), podcasts=(library.podcasts,))
    with live_server(settings) as live:
        track, episode = item_ids(live, keys["alice"])
        yield Env(live, keys, track, episode)


def start(client: httpx.Client, item_id: str, device: str, caps: dict[str, Any] | None = None,
          **extra: Any) -> httpx.Response:
    return client.post(SESSIONS, json={"item_id": item_id, "device_id": device,
                                       "capabilities": caps or FLAC_CAPS, **extra})


def started(client: httpx.Client, item_id: str, device: str, caps: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    response = start(client, item_id, device, caps, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_client_that_takes_the_original_gets_a_signed_direct_url(env: Env) -> None:
    with env.client("alice") as alice:
        before = time.time()
        body = started(alice, env.track, "desk")
        assert body["decision"] == "direct" and body["reasons"] == [] and body["profiles"] == []
        assert body["url"].startswith(f"/api/v1/stream/{env.track}/direct?t=")
        assert len(body["session_id"]) == 22 and body["resume_seconds"] == 0
        assert body["expires_at"] >= (before + 86_400) * 1000 - 1000
        again = alice.get(f"{SESSIONS}/{body['session_id']}")
        assert again.status_code == 200
        assert again.json()["url"] == body["url"] and again.json()["item_id"] == env.track
        # The URL plays with no header at all.
        assert httpx.get(env.live.url + body["url"], headers={"Range": "bytes=0-3"}).content == b"fLaC"
        assert alice.delete(f"{SESSIONS}/{body['session_id']}").status_code == 204


def test_hls_decisions_carry_the_chosen_profiles_in_the_playlist_url(env: Env) -> None:
    with env.client("alice") as alice, env.client("alice", **{"User-Agent": SAFARI_UA}) as safari:
        chrome = started(alice, env.track, "chrome", CHROME | {"codecs": ["aac", "opus"]})
        assert chrome["decision"] == "hls" and "codec_not_supported" in chrome["reasons"]
        assert chrome["profiles"][0] == "opus-128" and "aac-256" in chrome["profiles"]
        assert chrome["url"] == (f"/api/v1/stream/{env.track}/playlist.m3u8?t="
                                 f"{chrome['url'].split('t=')[1].split('&')[0]}"
                                 f"&profiles={','.join(chrome['profiles'])}")
        # An Apple player never gets Opus, even when it claims it.
        apple = started(safari, env.track, "iphone", AAC_ONLY | {"codecs": ["aac", "opus"]})
        assert apple["decision"] == "hls" and apple["profiles"] == ["aac-256", "aac-128", "aac-64"]
        low = started(alice, env.track, "car", AAC_ONLY | {"max_bitrate": 100_000})
        assert low["profiles"] == ["aac-64"] and "bitrate_too_high" in low["reasons"]
        playlist = httpx.get(env.live.url + chrome["url"])
        assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
        for body in (chrome, apple, low):
            assert alice.delete(f"{SESSIONS}/{body['session_id']}").status_code == 204


def test_nothing_in_common_is_422_with_the_reasons(env: Env) -> None:
    with env.client("alice") as alice:
        response = start(alice, env.track, "radio", {"codecs": ["mp3"], "containers": ["mp3"], "hls": False})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "no_compatible_stream" and error["field"] == "capabilities"
        assert error["reasons"] == ["codec_not_supported", "container_not_supported", "hls_not_supported"]
        response = start(alice, env.track, "radio", {"codecs": ["vorbis"], "hls": True})
        assert response.status_code == 422 and "no_hls_codec_in_common" in response.json()["error"]["reasons"]


def test_a_client_that_could_take_the_original_may_prefer_hls(env: Env) -> None:
    with env.client("alice") as alice:
        caps = {"codecs": ["flac", "aac"], "containers": ["flac", "mp4"], "hls": True}
        assert started(alice, env.track, "hls-only-tv", caps)["decision"] == "direct"
        body = started(alice, env.track, "hls-only-tv", {**caps, "prefer": "hls"})
        assert body["decision"] == "hls" and body["reasons"] == ["hls_preferred"] and body["profiles"]
        assert body["url"].startswith(f"/api/v1/stream/{env.track}/playlist.m3u8?")
        alice.delete(f"{SESSIONS}/{body['session_id']}")


@pytest.mark.parametrize(("body", "field"), [
    ({"device_id": "d", "capabilities": FLAC_CAPS}, "item_id"),
    ({"item_id": "NOT-AN-ID", "device_id": "d", "capabilities": FLAC_CAPS}, "item_id"),
    ({"item_id": 5, "device_id": "d", "capabilities": FLAC_CAPS}, "item_id"),
    ({"item_id": "TRACK", "capabilities": FLAC_CAPS}, "device_id"),
    ({"item_id": "TRACK", "device_id": "has space", "capabilities": FLAC_CAPS}, "device_id"),
    ({"item_id": "TRACK", "device_id": "d"}, "capabilities"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": ["flac"]}, "capabilities"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"containers": []}}, "capabilities.codecs"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": "flac"}}, "capabilities.codecs"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": [""]}}, "capabilities.codecs"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": ["aac"], "containers": [1]}},
     "capabilities.containers"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": ["aac"], "max_bitrate": -1}},
     "capabilities.max_bitrate"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": ["aac"], "max_bitrate": 1.5}},
     "capabilities.max_bitrate"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": ["aac"], "hls": "yes"}},
     "capabilities.hls"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": {"codecs": ["aac"], "prefer": "always"}},
     "capabilities.prefer"),
    ({"item_id": "TRACK", "device_id": "d\n", "capabilities": FLAC_CAPS}, "device_id"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": FLAC_CAPS, "start_seconds": -1},
     "start_seconds"),
    ({"item_id": "TRACK", "device_id": "d", "capabilities": FLAC_CAPS, "start_seconds": "5"},
     "start_seconds"),
])
def test_invalid_starts_are_400_naming_the_field(env: Env, body: dict[str, Any], field: str) -> None:
    if body.get("item_id") == "TRACK":
        body = {**body, "item_id": env.track}
    with env.client("alice") as alice:
        response = alice.post(SESSIONS, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field


def test_other_bad_starts(env: Env) -> None:
    with env.client("alice") as alice:
        assert alice.post(SESSIONS, content=b"{not json").json()["error"]["field"] == "body"
        assert alice.post(SESSIONS, json=[1]).json()["error"]["field"] == "body"
        assert start(alice, "a" * 16, "d").status_code == 404
        assert alice.post(SESSIONS, content=b" " * 70_000).status_code == 413
    assert httpx.post(env.live.url + SESSIONS, json={}).status_code == 401


def test_resume_comes_from_progress_unless_a_start_is_given(env: Env) -> None:
    with env.client("dave") as dave:
        put = dave.put(f"/api/v1/playback/progress/{env.episode}",
                       json={"position_seconds": 100, "device_id": "other"})
        assert put.status_code == 200
        body = started(dave, env.episode, "kitchen")
        assert body["resume_seconds"] == 100.0 and body["position_seconds"] == 100.0
        assert started(dave, env.episode, "kitchen", start_seconds=5.5)["resume_seconds"] == 5.5
        assert started(dave, env.episode, "kitchen", start_seconds=10**6)["resume_seconds"] == 600.0
        # The same device replaced its session each time: one is left.
        assert dave.delete(f"{SESSIONS}/{body['session_id']}").status_code == 404


def test_another_users_session_is_404_for_read_heartbeat_and_stop(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        mine = started(alice, env.episode, "alice-phone")
        url = f"{SESSIONS}/{mine['session_id']}"
        unknown = f"{SESSIONS}/{'A' * 22}"
        beat = {"position_seconds": 300, "state": "playing"}
        for response in (bob.get(url), bob.post(url + "/heartbeat", json=beat), bob.delete(url),
                         alice.get(unknown)):
            assert response.status_code == 404
            assert response.json()["error"] == {"code": "not_found", "message": "playback session not found",
                                                "field": "session_id"}
        still = alice.get(url).json()
        assert still["position_seconds"] == mine["position_seconds"] and still["state"] == "playing"
        progress = alice.get(f"/api/v1/playback/progress/{env.episode}").json()
        assert progress["position_seconds"] != 300  # bob's heartbeat moved nothing
        bad = alice.get(f"{SESSIONS}/not-an-id")
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "session_id"
        assert alice.delete(url).status_code == 204
        assert alice.get(url).status_code == 404


def test_the_fifth_device_is_429_but_replacing_a_device_is_not(env: Env) -> None:
    with env.client("carol") as carol:
        sessions = [started(carol, env.track, f"device-{i}") for i in range(4)]
        refused = start(carol, env.track, "device-4")
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "too_many_sessions" and "at most 4" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        again = started(carol, env.track, "device-2")
        assert carol.get(f"{SESSIONS}/{sessions[2]['session_id']}").status_code == 404
        assert carol.get(f"{SESSIONS}/{again['session_id']}").status_code == 200
        assert carol.delete(f"{SESSIONS}/{sessions[0]['session_id']}").status_code == 204
        fifth = started(carol, env.track, "device-4")
        for body in (sessions[1], again, sessions[3], fifth):
            assert carol.delete(f"{SESSIONS}/{body['session_id']}").status_code == 204


def test_heartbeats_move_progress(env: Env) -> None:
    with env.client("bob") as bob:
        body = started(bob, env.episode, "bob-laptop", start_seconds=0)
        beat_url = f"{SESSIONS}/{body['session_id']}/heartbeat"
        answer = bob.post(beat_url, json={"position_seconds": 42.5, "state": "playing"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["position_seconds"] == 42.5 and answer.json()["state"] == "playing"
        assert answer.json()["progress"]["position_seconds"] == 42.5
        progress = bob.get(f"/api/v1/playback/progress/{env.episode}").json()
        assert progress["position_seconds"] == 42.5 and progress["device_id"] == "bob-laptop"
        bob.post(beat_url, json={"position_seconds": 590, "state": "paused"})
        progress = bob.get(f"/api/v1/playback/progress/{env.episode}").json()
        assert progress["position_seconds"] == 590 and progress["completed"]  # last 30 s of an episode
        assert bob.get(f"{SESSIONS}/{body['session_id']}").json()["state"] == "paused"
        for bad, field in (({"state": "playing"}, "position_seconds"),
                           ({"position_seconds": -1, "state": "playing"}, "position_seconds"),
                           ({"position_seconds": 1, "state": "dancing"}, "state"),
                           ({"position_seconds": 1, "state": "playing", "playback_rate": 0}, "playback_rate"),
                           ({"position_seconds": 1, "state": "playing", "event": "jump"}, "event")):
            response = bob.post(beat_url, json=bad)
            assert response.status_code == 400 and response.json()["error"]["field"] == field
        assert bob.delete(f"{SESSIONS}/{body['session_id']}").status_code == 204
        assert bob.post(beat_url, json={"position_seconds": 1, "state": "playing"}).status_code == 404


def _gauge(live: LiveServer, name: str) -> float:
    for line in httpx.get(live.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_an_idle_session_ends_by_itself(library: Library, tmp_path: Path) -> None:
    key = add_user(tmp_path, "eve")
    settings = settings_for(tmp_path, library=(library.music,), podcasts=(library.podcasts,),
                            session_idle_seconds=IDLE_S)
    with live_server(settings) as live:
        track, _ = item_ids(live, key)
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as eve:
            body = started(eve, track, "phone")
            url = f"{SESSIONS}/{body['session_id']}"
            # Heartbeats every 0.25 s keep it open for well over the idle time.
            until = time.monotonic() + 1.5 * IDLE_S
            while time.monotonic() < until:
                time.sleep(0.25)  # the client's pace, not a wait for a state
                assert eve.post(url + "/heartbeat", json={"position_seconds": 1, "state": "playing"}
                                ).status_code == 200
            assert _gauge(live, "revenge_sessions_active") == 1
            # Then silence: it ends, and the reaper takes it off the active count.
            wait_until(lambda: eve.get(url).status_code == 404, "the idle session to end")
            wait_until(lambda: _gauge(live, "revenge_sessions_active") == 0, "the reaper to let go of it")
            assert eve.post(url + "/heartbeat", json={"position_seconds": 1, "state": "playing"}
                            ).status_code == 404
            assert 'revenge_sessions_started_total{decision="direct",profile="original"} 1.0' in \
                httpx.get(live.url + "/metrics").text


def test_two_instances_share_sessions_through_redis(library: Library, tmp_path: Path,
                                                    redis_server: RedisServer) -> None:  # noqa: F811
    first, second = tmp_path / "one", tmp_path / "two"
    key = add_user(first, "frank")
    stream_secrets.load_or_create(first)
    second.mkdir()
    # Shared: the users and the signing secret (as a deployment shares them), and the Redis store.
    for name in ("users.db", stream_secrets.FILE_NAME):
        shutil.copy(first / name, second / name)
    common = {"library": (library.music,), "podcasts": (library.podcasts,), "store": redis_server.url,
              "sessions_per_user": 2, "session_idle_seconds": IDLE_S}
    auth = {"Authorization": f"Bearer {key}"}
    with live_server(settings_for(first, **common)) as one, \
            live_server(settings_for(second, **common)) as two:
        track, episode = item_ids(one, key)
        with httpx.Client(base_url=one.url, headers=auth, timeout=10) as c1, \
                httpx.Client(base_url=two.url, headers=auth, timeout=10) as c2:
            body = started(c1, episode, "phone", start_seconds=0)
            url = f"{SESSIONS}/{body['session_id']}"
            assert c2.get(url).json()["session_id"] == body["session_id"]
            # The signed URL from instance 1 plays on instance 2.
            direct = started(c1, track, "desk")
            assert httpx.get(two.url + direct["url"], headers={"Range": "bytes=0-3"}).content == b"fLaC"
            # The cap counts sessions of both instances.
            assert start(c2, track, "car").status_code == 429
            # Heartbeats on instance 2 keep instance 1's session alive past instance 1's idle deadline,
            # and past the untouched direct session's.
            until, position = time.monotonic() + 1.5 * IDLE_S, 0
            while time.monotonic() < until:
                time.sleep(0.25)  # the client's pace, not a wait for a state
                position += 1
                beat = c2.post(url + "/heartbeat", json={"position_seconds": position, "state": "playing"})
                assert beat.status_code == 200, beat.text
            assert c1.get(url).json()["position_seconds"] == position
            assert c1.get(f"/api/v1/playback/progress/{episode}").json()["position_seconds"] == position
            # Meanwhile the untouched direct session timed out, for both instances.
            assert c1.get(f"{SESSIONS}/{direct['session_id']}").status_code == 404
            assert c2.get(f"{SESSIONS}/{direct['session_id']}").status_code == 404
            # Instance 1 still watches the live one (its reaper lets go of the other on its next round).
            wait_until(lambda: _gauge(one, "revenge_sessions_active") == 1, "instance 1 to watch one session")
            # A stop on instance 2 ends it for instance 1 too, whose reaper then lets go of it.
            assert c2.delete(url).status_code == 204
            assert c1.get(url).status_code == 404
            wait_until(lambda: _gauge(one, "revenge_sessions_active") == 0, "instance 1 to watch none")
            assert started(c2, track, "car")["decision"] == "direct"
