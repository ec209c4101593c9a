"""Live events over real HTTP (uvicorn, a scanned library) on both stores: progress and queue changes
reach the user's other devices, Last-Event-ID replays or resyncs, events tokens, remote control, a
stalled client, and (Redis) two instances on one store."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.config import Settings
from revenge.security.shared import open_stream_secrets
from revenge.security.signing import sign_stream_token
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.sse import SseStream
from tests.waits import wait_until

EVENTS = "/api/v1/events"


@dataclass
class Env:
    base: Path
    settings: Settings
    alice: dict[str, str]
    bob: dict[str, str]
    server: RedisServer | None


def make_env(base: Path, server: RedisServer | None, **overrides: Any) -> Env:
    for n in range(3):
        write_audio(base / "music" / f"song{n}.flac", seconds=30, rate=8000, channels=1, kind="silence",
                    tags={"title": f"Song {n}"})
    data = base / "data"
    alice = {"Authorization": f"Bearer {add_user(data, 'alice')}"}
    bob = {"Authorization": f"Bearer {add_user(data, 'bob')}"}
    store = "sqlite" if server is None else server.url
    settings = settings_for(data, library=(base / "music",), store=store, store_timeout_seconds=0.5,
                            **({"events_heartbeat_seconds": 0.3} | overrides))
    return Env(base, settings, alice, bob, server)


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return make_env(tmp_path, request.getfixturevalue("redis_server") if request.param == "redis" else None)


@contextlib.contextmanager
def running(env: Env) -> Iterator[tuple[LiveServer, list[str]]]:
    with live_server(env.settings) as live:
        items = httpx.get(live.url + "/api/v1/items?type=track", headers=env.alice, timeout=10).json()
        yield live, sorted(i["id"] for i in items["items"])


def token(live: LiveServer, headers: dict[str, str], device: str) -> dict[str, Any]:
    response = httpx.post(live.url + EVENTS + "/token", headers=headers, json={"device_id": device},
                          timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stream(live: LiveServer, headers: dict[str, str], device: str, last_id: str | None = None,
           by_token: bool = True) -> SseStream:
    """An open stream of ``device`` (authorised by a fresh token, or the header), ready."""
    if by_token:
        s = SseStream(live.url + token(live, headers, device)["url"])
    else:
        s = SseStream(live.url + EVENTS, headers=dict(headers), params={"device_id": device})
    if last_id is not None:
        s.headers["Last-Event-ID"] = last_id
    s.start()
    assert s.status == 200, s.body()
    s.wait_event("ready")
    return s


def put_progress(live: LiveServer, headers: dict[str, str], item: str, device: str, seconds: float,
                 event: str = "progress") -> None:
    body = {"position_seconds": seconds, "duration_seconds": 30, "device_id": device, "event": event,
            "client_ts": time.time_ns() // 1_000_000}
    response = httpx.put(f"{live.url}/api/v1/playback/progress/{item}", headers=headers, json=body,
                         timeout=10)
    assert response.status_code == 200, response.text


def put_queue(live: LiveServer, headers: dict[str, str], items: list[str], device: str) -> dict[str, Any]:
    current = httpx.get(live.url + "/api/v1/queue", headers=headers, timeout=10).json()
    response = httpx.put(live.url + "/api/v1/queue", headers=headers, timeout=10,
                         json={"version": current["version"], "device_id": device, "items": items})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_change_on_one_device_reaches_the_others_not_itself_nor_other_users(env: Env) -> None:
    with running(env) as (live, items), \
            stream(live, env.alice, "phone") as phone, \
            stream(live, env.alice, "laptop", by_token=False) as laptop, \
            stream(live, env.bob, "bobs") as bobs:
        put_progress(live, env.alice, items[0], "laptop", 12.5)
        got = phone.wait_event("progress")
        assert got.data["item_id"] == items[0] and got.data["device_id"] == "laptop"
        assert got.data["position_seconds"] == 12.5 and got.id is not None
        queue = put_queue(live, env.alice, items[:2], "phone")
        seen = laptop.wait_event("queue")
        assert seen.data["items"] == items[:2] and seen.data["version"] == queue["version"]
        assert seen.data["changed_by"] == "phone"
        # The laptop's first event is the phone's queue: its own progress did not come back to it;
        # the phone did not get its own queue change; bob got nothing of alice's.
        assert [e.type for e in laptop.events] == ["ready", "queue"]
        phone.wait_for(lambda s: s.comments > 0)  # a heartbeat came after the queue change was made
        assert [e.type for e in phone.events] == ["ready", "progress"]
        assert [e.type for e in bobs.events] == ["ready"]
        # Ids grow per user.
        assert tuple(map(int, seen.id.split("-"))) > tuple(map(int, got.id.split("-")))  # type: ignore[union-attr]


def test_last_event_id_replays_what_was_missed_else_resync(env: Env) -> None:
    with running(env) as (live, items):
        with stream(live, env.alice, "phone") as phone:
            put_progress(live, env.alice, items[0], "laptop", 1.0)
            first = phone.wait_event("progress")
        # Another item: the same one again within events_progress_window_ms would come after the queue.
        put_progress(live, env.alice, items[1], "laptop", 2.0)
        put_queue(live, env.alice, items[:1], "laptop")
        with stream(live, env.alice, "phone", last_id=first.id) as again:
            again.wait_for(lambda s: len(s.events) >= 3)
            assert again.events[0].type == "ready" and again.events[0].data["resumed"] is True
            assert [e.type for e in again.events[1:3]] == ["progress", "queue"]
            assert again.events[1].data["position_seconds"] == 2.0
            missed_last = again.events[2].id
        # The query parameter works the same (a client opening a new EventSource itself).
        url = live.url + token(live, env.alice, "phone")["url"] + f"&last_event_id={missed_last}"
        with SseStream(url).start() as by_param:
            by_param.wait_event("ready")
            by_param.wait_for(lambda s: s.comments > 0)
            assert [e.type for e in by_param.events] == ["ready"]
            assert by_param.events[0].data["resumed"] is True
        # An id the backlog does not hold (too old, another server's, garbage): resync, whose id is the
        # newest event's, so the next reconnect resumes from there.
        for stale in ("1-0", "garbage"):
            with stream(live, env.alice, "phone", last_id=stale) as told:
                resync = told.wait_event("resync")
                assert resync.id == missed_last
                assert told.events[0].data["resumed"] is False


def test_events_tokens_are_short_lived_and_bound_to_user_and_device(env: Env) -> None:
    with running(env) as (live, _):
        missing = httpx.get(live.url + EVENTS, params={"device_id": "phone"}, timeout=10)
        assert missing.status_code == 401 and missing.json()["error"]["field"] == "t"
        bad_key = httpx.get(live.url + EVENTS, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert bad_key.status_code == 401
        issued = token(live, env.alice, "phone")
        assert 50 <= issued["expires_at"] - time.time() <= 61  # events_token_ttl_seconds = 60
        t = issued["token"]
        forged = t[:-1] + ("A" if t[-1] != "A" else "B")
        for params in ({"device_id": "phone", "t": forged}, {"device_id": "other", "t": t},
                       {"device_id": "phone", "t": t + "x"}):
            refused = httpx.get(live.url + EVENTS, params=params, timeout=10)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "invalid_token"
        no_device = httpx.post(live.url + EVENTS + "/token", headers=env.alice, json={}, timeout=10)
        assert no_device.status_code == 400 and no_device.json()["error"]["field"] == "device_id"
        # Signed with the server's own secret, but expired: 403 token_expired; a stream token for an
        # item does not open events either.
        user_id = httpx.get(live.url + "/api/v1/me", headers=env.alice, timeout=10).json()["id"]
        secrets = open_stream_secrets(env.settings)
        try:
            secret = secrets.current()[0]
        finally:
            secrets.close()
        past = sign_stream_token(secret, user_id, "events:phone", int(time.time()) - 1)
        expired = httpx.get(live.url + EVENTS, params={"device_id": "phone", "t": past}, timeout=10)
        assert expired.status_code == 403 and expired.json()["error"]["code"] == "token_expired"
        other_use = sign_stream_token(secret, user_id, "phone", int(time.time()) + 60)
        assert httpx.get(live.url + EVENTS, params={"device_id": "phone", "t": other_use},
                         timeout=10).status_code == 403


def test_devices_and_remote_control(env: Env) -> None:
    with running(env) as (live, items), \
            stream(live, env.alice, "kitchen") as kitchen, stream(live, env.alice, "phone") as phone:
        put_progress(live, env.alice, items[1], "kitchen", 5.0, event="start")
        phone.wait_event("progress")
        listed = httpx.get(live.url + "/api/v1/devices", headers=env.alice, timeout=10).json()["devices"]
        by_id = {d["device_id"]: d for d in listed}
        assert set(by_id) == {"kitchen", "phone"}
        assert by_id["kitchen"]["item_id"] == items[1] and by_id["kitchen"]["state"] == "playing"
        assert by_id["kitchen"]["position_seconds"] >= 5.0 and by_id["kitchen"]["connected"] is True
        assert by_id["phone"]["item_id"] is None and by_id["phone"]["connected"] is True
        bob_sees = httpx.get(live.url + "/api/v1/devices", headers=env.bob, timeout=10).json()
        assert bob_sees == {"devices": []}

        def command(device: str, **body: Any) -> httpx.Response:
            return httpx.post(f"{live.url}/api/v1/devices/{device}/commands", headers=env.alice,
                              json={"from_device": "phone", **body}, timeout=10)

        sent = command("kitchen", command="seek", position_seconds=42)
        assert sent.status_code == 202, sent.text
        got = kitchen.wait_event("command")
        assert got.data == {"command": "seek", "position_seconds": 42.0, "from_device": "phone"}
        assert command("kitchen", command="volume", level=0.5).status_code == 202
        kitchen.wait_event("command", where=lambda e: e.data["command"] == "volume")
        # A transfer: the kitchen pauses, the phone plays the same item from where the kitchen is.
        assert command("kitchen", command="transfer", to_device="phone").status_code == 202
        kitchen.wait_event("command", where=lambda e: e.data["command"] == "pause")
        moved = phone.wait_event("command", where=lambda e: e.data["command"] == "transfer")
        assert moved.data["item_id"] == items[1] and moved.data["position_seconds"] >= 5.0
        assert moved.data["from_device"] == "kitchen"
        assert not [e for e in phone.events if e.type == "command" and e.data["command"] != "transfer"]
        # Refusals.
        unknown = command("car", command="play")
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "device_id"
        assert command("kitchen", command="transfer", to_device="car").json()["error"]["field"] == "to_device"
        for body, field in (({"command": "jump"}, "command"), ({"command": "seek"}, "position_seconds"),
                            ({"command": "volume", "level": 2}, "level"),
                            ({"command": "volume", "level": True}, "level"),
                            ({"command": "transfer"}, "to_device")):
            refused = command("kitchen", **body)
            assert refused.status_code == 400 and refused.json()["error"]["field"] == field, refused.text
        assert command("phone", command="transfer", to_device="kitchen").status_code == 409


def test_two_instances_on_one_redis_deliver_to_each_other(tmp_path: Path,
                                                          redis_server: RedisServer) -> None:  # noqa: F811
    env = make_env(tmp_path, redis_server)
    other = settings_for(tmp_path / "data-b", library=env.settings.library, store=redis_server.url,
                         store_timeout_seconds=0.5, events_heartbeat_seconds=0.3)
    with running(env) as (a, items), live_server(other) as b, \
            stream(a, env.alice, "phone") as on_a, stream(b, env.alice, "laptop") as on_b:
        put_progress(b, env.alice, items[0], "laptop", 3.0)
        assert on_a.wait_event("progress").data["device_id"] == "laptop"
        put_queue(a, env.alice, items[:1], "phone")
        assert on_b.wait_event("queue").data["changed_by"] == "phone"
        # Each lists the other's device, and a command from one reaches a device on the other.
        listed = httpx.get(a.url + "/api/v1/devices", headers=env.alice, timeout=10).json()["devices"]
        assert {d["device_id"] for d in listed} == {"phone", "laptop"}
        sent = httpx.post(a.url + "/api/v1/devices/laptop/commands", headers=env.alice,
                          json={"command": "pause"}, timeout=10)
        assert sent.status_code == 202
        assert on_b.wait_event("command").data["command"] == "pause"
        # A stream resumes on the other instance from the id the first gave it.
        last = on_a.last_id()
    with running(env) as (a, items):
        put_progress(a, env.alice, items[0], "laptop", 4.0)
        with live_server(other) as b, stream(b, env.alice, "phone", last_id=last) as resumed:
            got = resumed.wait_event("progress")
            assert got.data["position_seconds"] == 4.0 and resumed.events[0].data["resumed"] is True


def test_a_redis_outage_ends_streams_with_resync_and_loses_no_acknowledged_change(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    env = make_env(tmp_path, redis_server)
    with running(env) as (live, items), stream(live, env.alice, "phone") as phone:
        put_progress(live, env.alice, items[0], "laptop", 7.0)
        seen = phone.wait_event("progress")
        redis_server.stop()
        phone.wait_event("resync")
        phone.wait_for(lambda s: s.ended)
        down = httpx.put(f"{live.url}/api/v1/playback/progress/{items[0]}", headers=env.alice, timeout=10,
                         json={"position_seconds": 9, "duration_seconds": 30, "device_id": "laptop"})
        assert down.status_code == 503
        refused = SseStream(live.url + token(live, env.alice, "phone")["url"]).start()
        assert refused.status == 503
        refused.close()
        redis_server.start()

        def reopened() -> bool:
            s = SseStream(live.url + token(live, env.alice, "phone")["url"],
                          headers={"Last-Event-ID": seen.id or ""}).start()
            try:
                return s.status == 200
            finally:
                s.close()

        wait_until(reopened, "streams to open again after the outage")
        with stream(live, env.alice, "phone", last_id=seen.id) as again:
            # The progress store's circuit (and, with the journal, its replay) recovers on its own
            # clock, independent of the event reader's: until then writes are 503, never acknowledged.
            def written() -> bool:
                body = {"position_seconds": 11.0, "duration_seconds": 30, "device_id": "laptop",
                        "client_ts": time.time_ns() // 1_000_000}
                answer = httpx.put(f"{live.url}/api/v1/playback/progress/{items[0]}", headers=env.alice,
                                   json=body, timeout=10)
                assert answer.status_code in (200, 503), answer.text
                return answer.status_code == 200

            wait_until(written, "progress writes to recover after the outage")
            assert again.wait_event("progress").data["position_seconds"] == 11.0
        body = httpx.get(f"{live.url}/api/v1/playback/progress/{items[0]}", headers=env.alice, timeout=10)
        assert body.json()["position_seconds"] == 11.0


def test_a_session_started_and_stopped_on_one_device_is_told_to_the_others(env: Env) -> None:
    with running(env) as (live, items), stream(live, env.alice, "phone") as phone:
        body = {"item_id": items[2], "device_id": "car",
                "capabilities": {"codecs": ["flac"], "containers": ["flac"], "hls": False}}
        started = httpx.post(live.url + "/api/v1/playback/sessions", headers=env.alice, json=body, timeout=10)
        assert started.status_code == 201, started.text
        session_id = started.json()["session_id"]
        got = phone.wait_event("session")
        assert got.data["action"] == "started" and got.data["device_id"] == "car"
        assert got.data["item_id"] == items[2] and got.data["session_id"] == session_id
        listed = httpx.get(live.url + "/api/v1/devices", headers=env.alice, timeout=10).json()["devices"]
        assert {d["device_id"]: d["item_id"] for d in listed}["car"] == items[2]
        stopped = httpx.delete(f"{live.url}/api/v1/playback/sessions/{session_id}", headers=env.alice,
                               timeout=10)
        assert stopped.status_code in (200, 204), stopped.text
        end = phone.wait_event("session", where=lambda e: e.data["action"] == "stopped")
        assert end.data["reason"] == "stopped" and end.data["device_id"] == "car"
