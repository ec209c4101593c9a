"""Linking ListenBrainz and Last.fm over HTTP (a real uvicorn server, a real scanned library, the local
stand-ins of tests/scrobble_fakes.py), and the whole way of a listen: POST a scrobble → the background
forwarder → the service; a session's start → "now playing". Secrets never appear in an answer, a log
line or the link store's file."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import write_audio
from tests.scrobble_fakes import FakeLastfm, FakeListenBrainz, Served
from tests.waits import wait_until

ME = "/api/v1/me/scrobblers"


@dataclass
class Env:
    live: LiveServer
    keys: dict[str, dict[str, str]]
    track: str
    lb: FakeListenBrainz
    lastfm: FakeLastfm
    data: Path

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.live.url, headers=self.keys[user], timeout=30)


RECORDING_MBID = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("scrobblers-http")
    write_audio(base / "music" / "song.flac", seconds=200, rate=8000, channels=1, kind="silence",
                tags={"title": "Song", "artist": "The Band", "album": "The Album",
                      "MUSICBRAINZ_TRACKID": RECORDING_MBID})
    data = base / "data"
    keys = {name: {"Authorization": f"Bearer {add_user(data, name)}"} for name in ("alice", "bob", "carol")}
    lb, lastfm = FakeListenBrainz(), FakeLastfm()
    lb_server, lastfm_server = Served(lb.app()), Served(lastfm.app())
    settings = test_settings(data, library=(base / "music",), listenbrainz_url=lb_server.url,
                             lastfm_api_url=lastfm_server.url + "/2.0/", lastfm_api_key=lastfm.api_key,
                             lastfm_api_secret=lastfm.secret, lastfm_auth_url="https://auth.test/api/auth",
                             scrobble_interval_seconds=0.1, scrobble_retry_seconds=0.1)
    try:
        with live_server(settings) as live:
            listed = httpx.get(live.url + "/api/v1/items", headers=keys["alice"], timeout=10)
            (track,) = listed.json()["items"]
            yield Env(live, keys, track["id"], lb, lastfm, data)
    finally:
        lb_server.stop(force=True)
        lastfm_server.stop(force=True)


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused (a service that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def scrobble_now(client: httpx.Client, track: str, minutes_ago: int) -> int:
    started = int(time.time() * 1000) - minutes_ago * 60_000
    r = client.post("/api/v1/playback/scrobble", json={"item_id": track, "started_at": started,
                                                       "listened_seconds": 180})
    assert r.status_code == 201, r.text
    return started


def secrets_absent(env: Env, secret: str, caplog: pytest.LogCaptureFixture, *answers: httpx.Response) -> None:
    for answer in answers:
        assert secret not in answer.text
    for path in env.data.glob("scrobblers.db*"):
        assert secret.encode() not in path.read_bytes()
    assert not [r for r in caplog.records if secret in r.getMessage()]


def test_listenbrainz_link_forward_and_unlink(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = env.lb.add_user("alice-lb")
    with env.client("alice") as client:
        listed = client.get(ME)
        assert listed.status_code == 200
        assert [(s["service"], s["state"], s["configured"]) for s in listed.json()["scrobblers"]] == [
            ("listenbrainz", "unlinked", True), ("lastfm", "unlinked", True)]
        started = scrobble_now(client, env.track, 30)  # before linking: waits in the outbox
        assert client.get(f"{ME}/listenbrainz").json()["outbox"] == 1
        for body, code in (({"token": "6ff6c3b7-0000-4000-8000-000000000000"}, "invalid_token"),
                           ({"token": "has space"}, "invalid"), ({"token": 5}, "invalid"), ({}, "invalid")):
            r = client.put(f"{ME}/listenbrainz", json=body)
            assert r.status_code == 400 and r.json()["error"] == {**r.json()["error"], "code": code,
                                                                 "field": "token"}, r.text
        linked = client.put(f"{ME}/listenbrainz", json={"token": token})
        assert linked.status_code == 200, linked.text
        assert linked.json() == {**linked.json(), "state": "active", "account": "alice-lb"}
        wait_until(lambda: bool(env.lb.stored("alice-lb")), "the history to reach ListenBrainz")
        (listen,) = env.lb.stored("alice-lb")
        assert listen["listened_at"] == started // 1000
        assert listen["track_metadata"]["artist_name"] == "The Band"
        # The recording's MusicBrainz id, read from the file's tags by the scan, goes with it.
        assert listen["track_metadata"]["additional_info"]["recording_mbid"] == RECORDING_MBID
        second = scrobble_now(client, env.track, 10)
        wait_until(lambda: len(env.lb.stored("alice-lb")) == 2, "a new listen to be forwarded")
        assert env.lb.stored("alice-lb")[1]["listened_at"] == second // 1000
        state = client.get(f"{ME}/listenbrainz")
        wait_until(lambda: client.get(f"{ME}/listenbrainz").json()["last_sent_at"] is not None,
              "the link's sent mark")
        assert client.get(f"{ME}/listenbrainz").json()["outbox"] == 0
        record = client.post("/api/v1/playback/scrobble", json={"item_id": env.track, "started_at": second,
                                                                "listened_seconds": 1}).json()["scrobble"]
        assert record["sent"] is True and record["deliveries"]["listenbrainz"]["state"] == "sent"
        secrets_absent(env, token, caplog, listed, linked, state)
        assert client.delete(f"{ME}/listenbrainz").status_code == 204
        gone = client.delete(f"{ME}/listenbrainz")
        assert gone.status_code == 404 and gone.json()["error"]["field"] == "service"
        assert client.get(f"{ME}/listenbrainz").json()["state"] == "unlinked"
    with env.client("bob") as client:  # links are per user
        assert client.get(f"{ME}/listenbrainz").json()["state"] == "unlinked"


def test_lastfm_web_auth_link_and_forward(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with env.client("bob") as client:
        r = client.get(f"{ME}/lastfm/authorize", params={"cb": "https://me.test/back"})
        assert r.status_code == 200, r.text
        url, token = r.json()["url"], r.json()["token"]
        assert url == (f"https://auth.test/api/auth/?api_key={env.lastfm.api_key}&token={token}"
                       "&cb=https%3A%2F%2Fme.test%2Fback")
        for bad in ("javascript:alert(1)", "https://x.test/\n"):
            r = client.get(f"{ME}/lastfm/authorize", params={"cb": bad})
            assert r.status_code == 400 and r.json()["error"]["field"] == "cb"
        early = client.put(f"{ME}/lastfm", json={"token": token})  # not authorised by the user yet
        assert early.status_code == 400 and early.json()["error"]["code"] == "invalid_token"
        env.lastfm.authorize(token, "bob-fm")
        linked = client.put(f"{ME}/lastfm", json={"token": token})
        assert linked.status_code == 200, linked.text
        assert linked.json() == {**linked.json(), "state": "active", "account": "bob-fm"}
        started = scrobble_now(client, env.track, 5)
        wait_until(lambda: bool(env.lastfm.stored("bob-fm")), "the scrobble to reach Last.fm")
        (entry,) = env.lastfm.stored("bob-fm")
        assert (entry["artist"], entry["track"], entry["album"]) == ("The Band", "Song", "The Album")
        assert entry["timestamp"] == str(started // 1000)
        (session_key,) = [k for k, user in env.lastfm.sessions.items() if user == "bob-fm"]
        secrets_absent(env, session_key, caplog, linked, client.get(ME), client.get(f"{ME}/lastfm"))
        # The session key dies on Last.fm's side: forwarding stops, and says so.
        env.lastfm.sessions.pop(session_key)
        scrobble_now(client, env.track, 2)
        wait_until(lambda: client.get(f"{ME}/lastfm").json()["state"] == "stopped", "the link to stop")
        error = client.get(f"{ME}/lastfm").json()["last_error"]
        assert error["permanent"] is True and "session key" in error["message"].lower()
        assert client.get(f"{ME}/lastfm").json()["outbox"] == 1  # kept for when it is linked again


def test_a_session_start_sends_now_playing(env: Env) -> None:
    with env.client("carol") as client:
        linked = client.put(f"{ME}/listenbrainz", json={"token": env.lb.add_user("carol-lb")})
        assert linked.status_code == 200
        before = len(env.lb.calls.now_playing)
        r = client.post("/api/v1/playback/sessions", json={
            "item_id": env.track, "device_id": "phone",
            "capabilities": {"codecs": ["flac"], "containers": ["flac"]}})
        assert r.status_code == 201, r.text
        wait_until(lambda: len(env.lb.calls.now_playing) > before, "now playing")
        assert env.lb.calls.now_playing[-1]["track_metadata"]["track_name"] == "Song"
        assert "listened_at" not in env.lb.calls.now_playing[-1]
        # An album session's "now playing" is the track at its start, not the album.
        (album,) = client.get("/api/v1/albums").json()["albums"]
        before = len(env.lb.calls.now_playing)
        r = client.post("/api/v1/playback/sessions", json={
            "album_id": album["id"], "device_id": "desk", "capabilities": {"codecs": ["aac"], "hls": True}})
        assert r.status_code == 201, r.text
        wait_until(lambda: len(env.lb.calls.now_playing) > before, "now playing of the album's track")
        assert env.lb.calls.now_playing[-1]["track_metadata"]["track_name"] == "Song"
        # A heartbeat in the same track says nothing more.
        beat = client.post(f"/api/v1/playback/sessions/{r.json()['session_id']}/heartbeat",
                           json={"position_seconds": 5, "state": "playing"})
        assert beat.status_code == 200 and beat.json()["track"]["offset_seconds"] == 5.0


def test_service_unreachable_is_502_and_unconfigured_lastfm_is_409(tmp_path: Path) -> None:
    with _closed_port() as port:
        data = tmp_path / "data"
        key = add_user(data, "dave")
        settings = test_settings(data, scan_on_start=False, listenbrainz_url=f"http://127.0.0.1:{port}")
        headers = {"Authorization": f"Bearer {key}"}
        with live_server(settings, wait_scan=False) as live, \
                httpx.Client(base_url=live.url, headers=headers, timeout=30) as client:
            r = client.put(f"{ME}/listenbrainz", json={"token": "abc"})
            assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable", r.text
            lastfm = client.get(f"{ME}/lastfm").json()
            assert lastfm["configured"] is False
            for r in (client.get(f"{ME}/lastfm/authorize"),
                      client.put(f"{ME}/lastfm", json={"token": "abc"})):
                assert r.status_code == 409 and r.json()["error"]["code"] == "not_configured", r.text
            for method, path in (("GET", ME), ("PUT", f"{ME}/listenbrainz"), ("DELETE", f"{ME}/lastfm"),
                                 ("GET", f"{ME}/lastfm/authorize")):
                assert httpx.request(method, live.url + path, json={}).status_code == 401
