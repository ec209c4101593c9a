"""Progress over HTTP: a real uvicorn server, a real scanned library (generated media), SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from revenge.library.model import Chapter
from revenge.progress import rules
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.waits import wait_until

MIN = 60_000


@dataclass
class Env:
    live: LiveServer
    alice: dict[str, str]
    bob: dict[str, str]
    episode: dict[str, Any]
    track: dict[str, Any]
    book: dict[str, Any]

    def url(self, path: str) -> str:
        return self.live.url + path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("progress-http")
    # Silence at a low rate in FLAC: minutes of audio in a few KB, probed exactly.
    write_audio(base / "music" / "song.flac", seconds=200, rate=8000, channels=1, kind="silence",
                tags={"title": "Song"})
    write_audio(base / "podcasts" / "show" / "ep1.flac", seconds=600, rate=8000, channels=1,
                kind="silence", tags={"title": "Episode 1"})
    for part in (1, 2):
        write_audio(base / "books" / "Book" / f"part{part}.flac", seconds=300, rate=8000, channels=1,
                    kind="silence", tags={"title": f"Part {part}"})
    data = base / "data"
    alice, bob = add_user(data, "alice"), add_user(data, "bob")
    settings = settings_for(data, library=(base / "music",), podcasts=(base / "podcasts",),
                             audiobooks=(base / "books",))
    with live_server(settings) as live:
        headers = {"Authorization": f"Bearer {alice}"}
        items = httpx.get(live.url + "/api/v1/items", headers=headers, timeout=10).json()["items"]
        by_type = {i["type"]: i for i in items}
        book = httpx.get(live.url + f"/api/v1/items/{by_type['audiobook']['id']}", headers=headers,
                         timeout=10).json()
        yield Env(live, headers, {"Authorization": f"Bearer {bob}"}, by_type["episode"], by_type["track"],
                  book)


@pytest.fixture
def client(env: Env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env.live.url, headers=env.alice, timeout=30) as c:
        yield c


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def put(client: httpx.Client, item_id: str, **body: Any) -> httpx.Response:
    return client.put(f"/api/v1/playback/progress/{item_id}", json=body)


def reset(client: httpx.Client, item_id: str) -> None:
    assert client.delete(f"/api/v1/playback/progress/{item_id}").status_code == 204


def test_seed_shape_put_then_get(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    never = client.get(f"/api/v1/playback/progress/{item}").json()
    assert never["version"] == 0 and never["position_seconds"] == 0 and never["devices"] == []
    r = put(client, item, position_seconds=42.5, duration_seconds=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["position_seconds"] == 42.5 and body["position_ms"] == 42_500
    assert body["duration_ms"] == env.episode["duration_ms"]
    assert body["version"] == 1 and body["device_id"] == "unknown"
    got = client.get(f"/api/v1/playback/progress/{item}").json()
    assert "devices" not in body  # a write's answer leaves the device rows to GET
    assert {k: v for k, v in got.items() if k != "devices"} == body
    assert got["devices"][0]["device_id"] == "unknown" and got["devices"][0]["position_seconds"] == 42.5
    assert got["resume_position_seconds"] == 42.5


def test_full_update_and_device_rows(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    t = now_ms() - 60 * MIN
    first = put(client, item, position_seconds=60, event="start", device_id="phone", client_ts=t)
    assert first.status_code == 200
    put(client, item, position_seconds=120, event="progress", device_id="laptop", client_ts=t + 10 * MIN,
        playback_rate=1.5)
    stale = put(client, item, position_seconds=90, event="pause", device_id="phone", client_ts=t + 2 * MIN)
    body = stale.json()
    assert body["position_seconds"] == 120 and body["device_id"] == "laptop" and body["playback_rate"] == 1.5
    body = client.get(f"/api/v1/playback/progress/{item}").json()
    devices = {d["device_id"]: d for d in body["devices"]}
    assert devices["phone"]["position_seconds"] == 90 and devices["laptop"]["position_seconds"] == 120
    assert [d["device_id"] for d in body["devices"]] == ["laptop", "phone"]  # newest event first
    seek = put(client, item, position_seconds=30, event="seek", device_id="laptop", client_ts=t + 11 * MIN)
    assert seek.json()["position_seconds"] == 30


def test_clock_ahead_is_clamped_to_receive_time(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    before = now_ms()
    ahead = put(client, item, position_seconds=100, device_id="phone", client_ts=before + 3_600_000).json()
    assert before <= ahead["event_ts"] <= now_ms()
    later = put(client, item, position_seconds=200, device_id="laptop", client_ts=now_ms()).json()
    assert later["position_seconds"] == 200 and later["device_id"] == "laptop"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "position_seconds"),
    ({"position_seconds": -1}, "position_seconds"),
    ({"position_seconds": "12"}, "position_seconds"),
    ({"position_seconds": True}, "position_seconds"),
    ({"position_seconds": 1, "duration_seconds": -5}, "duration_seconds"),
    ({"position_seconds": 1, "event": "rewind"}, "event"),
    ({"position_seconds": 1, "device_id": ""}, "device_id"),
    ({"position_seconds": 1, "device_id": "x" * 65}, "device_id"),
    ({"position_seconds": 1, "device_id": "../etc"}, "device_id"),
    ({"position_seconds": 1, "device_id": "phone\n"}, "device_id"),  # "$" matched before a final newline
    ({"position_seconds": 1, "client_ts": -1}, "client_ts"),
    ({"position_seconds": 1, "playback_rate": 0}, "playback_rate"),
    ({"position_seconds": 1, "playback_rate": -1}, "playback_rate"),
    ({"position_seconds": 1, "playback_rate": 16.5}, "playback_rate"),
    ([1, 2], "body"),
])
def test_invalid_bodies_name_the_field(env: Env, client: httpx.Client, body: Any, field: str) -> None:
    r = client.put(f"/api/v1/playback/progress/{env.episode['id']}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_non_json_and_non_finite_bodies(env: Env, client: httpx.Client) -> None:
    path = f"/api/v1/playback/progress/{env.episode['id']}"
    for raw in (b"not json", b'{"position_seconds": NaN}', b'{"position_seconds": 1e999}'):
        r = client.put(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "body"


def test_position_beyond_duration_is_clamped(env: Env, client: httpx.Client) -> None:
    item = env.track["id"]
    reset(client, item)
    body = put(client, item, position_seconds=10_000, duration_seconds=10_000).json()
    assert body["position_ms"] == env.track["duration_ms"] and body["percent"] == 100.0


def test_unknown_and_malformed_items_and_auth(env: Env, client: httpx.Client) -> None:
    r = put(client, "a" * 16, position_seconds=1)
    assert r.status_code == 404 and r.json()["error"]["field"] == "item_id"
    r = client.get("/api/v1/playback/progress/NOT-AN-ID")
    assert r.status_code == 400 and r.json()["error"]["field"] == "item_id"
    r = httpx.put(env.url(f"/api/v1/playback/progress/{env.episode['id']}"), json={"position_seconds": 1})
    assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = httpx.put(env.url(f"/api/v1/playback/progress/{env.episode['id']}"), json={"position_seconds": 1},
                  headers={"Authorization": "Bearer rv_not-a-key"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"
    r = put(client, "NOT-AN-ID", position_seconds=1)
    assert r.status_code == 400 and r.json()["error"]["field"] == "item_id"
    r = client.put(f"/api/v1/playback/progress/{env.episode['id']}", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == {"code": "invalid", "field": "body",
                                                          "message": "request body is not valid JSON"}


def test_batch_replay_with_per_update_results(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    t = now_ms() - 10 * MIN
    offline = [{"item_id": item, "position_seconds": 10 * i, "device_id": "phone",
                "client_ts": t + 10_000 * i} for i in range(1, 31)]
    shuffled = offline[::2] + offline[1::2][::-1]
    bad = [{"item_id": "a" * 16, "position_seconds": 1}, {"item_id": item, "position_seconds": -3},
           {"position_seconds": 1}, "junk"]
    r = client.post("/api/v1/playback/progress:batch", json={"updates": shuffled[:10] + bad + shuffled[10:]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 34
    statuses = [x["status"] for x in results]
    assert statuses[10:14] == [404, 400, 400, 400]
    assert results[11]["error"]["field"] == "updates[11].position_seconds"
    assert results[12]["error"]["field"] == "updates[12].item_id"
    assert results[13]["error"]["field"] == "updates[13]"
    assert statuses[:10] == [200] * 10 and statuses[14:] == [200] * 20
    final = client.get(f"/api/v1/playback/progress/{item}").json()
    assert final["position_seconds"] == 300 and final["event_ts"] == t + 300_000
    assert final["version"] == 30


def test_batch_limits(env: Env, client: httpx.Client) -> None:
    too_many = [{"item_id": env.episode["id"], "position_seconds": 1}] * 1001
    r = client.post("/api/v1/playback/progress:batch", json={"updates": too_many})
    assert r.status_code == 400 and r.json()["error"]["field"] == "updates"
    r = client.post("/api/v1/playback/progress:batch", json={"update": []})
    assert r.status_code == 400 and r.json()["error"]["field"] == "updates"
    r = client.post("/api/v1/playback/progress:batch", content=b"x" * (2 << 20))
    assert r.status_code == 413


def test_continue_played_hidden_reset(env: Env, client: httpx.Client) -> None:
    ep, book, track = env.episode["id"], env.book["id"], env.track["id"]
    for item in (ep, book, track):
        reset(client, item)
    t = now_ms()
    put(client, ep, position_seconds=100, client_ts=t - 3000)
    put(client, book, position_seconds=400, client_ts=t - 2000)
    put(client, track, position_seconds=20, client_ts=t - 1000)  # < 30 s: not started
    listing = client.get("/api/v1/playback/continue").json()["items"]
    assert [e["item"]["id"] for e in listing] == [book, ep]
    assert listing[0]["progress"]["position_seconds"] == 400 and listing[0]["item"]["type"] == "audiobook"
    only = client.get("/api/v1/playback/continue", params={"type": "episode", "limit": 1}).json()["items"]
    assert [e["item"]["id"] for e in only] == [ep]
    for params, field in (({"type": "song"}, "type"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"limit": "x"}, "limit")):
        r = client.get("/api/v1/playback/continue", params=params)
        assert r.status_code == 400 and r.json()["error"]["field"] == field
    # Hide, unhide.
    hidden = client.post(f"/api/v1/playback/progress/{book}/hidden").json()
    assert hidden["hidden"] is True
    assert [e["item"]["id"] for e in client.get("/api/v1/playback/continue").json()["items"]] == [ep]
    assert client.delete(f"/api/v1/playback/progress/{book}/hidden").json()["hidden"] is False
    # Played, unplayed.
    played = client.post(f"/api/v1/playback/progress/{ep}/played").json()
    assert played["completed"] and played["position_ms"] == env.episode["duration_ms"]
    assert played["completed_count"] == 1 and played["resume_position_seconds"] == 0
    assert [e["item"]["id"] for e in client.get("/api/v1/playback/continue").json()["items"]] == [book]
    unplayed = client.delete(f"/api/v1/playback/progress/{ep}/played").json()
    assert not unplayed["completed"] and unplayed["position_ms"] == 0 and unplayed["completed_count"] == 1
    # Reset.
    reset(client, book)
    assert client.get(f"/api/v1/playback/progress/{book}").json()["version"] == 0
    assert client.get("/api/v1/playback/continue").json()["items"] == []


def test_users_do_not_see_each_other(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    put(client, item, position_seconds=77)
    theirs = httpx.get(env.url(f"/api/v1/playback/progress/{item}"), headers=env.bob).json()
    assert theirs["version"] == 0 and theirs["position_seconds"] == 0


def test_audiobook_chapter_is_derived(env: Env, client: httpx.Client) -> None:
    book = env.book
    reset(client, book["id"])
    body = put(client, book["id"], position_seconds=310).json()
    chapters = [Chapter(c["index"], c["title"], c["start_ms"], c["end_ms"]) for c in book["chapters"]]
    assert len(chapters) == 2
    expected = rules.chapter_at(chapters, 310_000)
    assert expected is not None and expected.index == chapters[1].index
    assert body["chapter"]["index"] == expected.index
    assert body["chapter"]["position_in_chapter_seconds"] == expected.position_in_chapter_ms / 1000


def test_track_plays_counted_over_http(env: Env, client: httpx.Client) -> None:
    item = env.track["id"]  # 200 s: a play at 100 s heard
    reset(client, item)
    t = now_ms() - 30 * MIN
    for listen in range(2):
        start = t + listen * 10 * MIN
        put(client, item, position_seconds=0, event="start", client_ts=start)
        for s in range(10, 201, 10):
            body = put(client, item, position_seconds=s, client_ts=start + s * 1000).json()
    assert body["play_count"] == 2


async def test_concurrent_puts_are_all_applied(env: Env) -> None:
    item = env.episode["id"]
    async with httpx.AsyncClient(base_url=env.live.url, headers=env.alice, timeout=30) as c:
        assert (await c.delete(f"/api/v1/playback/progress/{item}")).status_code == 204
        t = now_ms() - 10 * MIN
        responses = await asyncio.gather(*(
            c.put(f"/api/v1/playback/progress/{item}",
                  json={"position_seconds": i, "device_id": f"d{i % 8}", "client_ts": t + i})
            for i in range(1, 201)))
        assert all(r.status_code == 200 for r in responses)
        final = (await c.get(f"/api/v1/playback/progress/{item}")).json()
    assert final["version"] == 200 and final["position_seconds"] == 200
    assert sorted(d["device_id"] for d in final["devices"]) == [f"d{i}" for i in range(8)]


def test_store_outage_is_503_with_retry_after(env: Env, client: httpx.Client) -> None:
    """Another process holds SQLite's write lock past the store timeout: the update is refused with
    503 + Retry-After (not acknowledged, not lost silently); while the store is known down reads and
    writes get 503 at once, and once the lock is gone (a probe sees it) writes succeed again."""
    item = env.episode["id"]
    reset(client, item)
    other = sqlite3.connect(env.live.settings.data_dir / "progress.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        r = put(client, item, position_seconds=5)
        meanwhile = client.get(f"/api/v1/playback/progress/{item}")
        replay = client.post("/api/v1/playback/progress:batch", json={"updates": [
            {"item_id": item, "position_seconds": 7}, {"item_id": item, "position_seconds": -1}]})
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "unavailable"
    assert meanwhile.status_code == 503 and meanwhile.headers["Retry-After"] == "1"
    # An offline replay during the outage: one result each, and Retry-After for the ones to send again.
    assert replay.status_code == 200 and replay.headers["Retry-After"] == "1"
    assert [result["status"] for result in replay.json()["results"]] == [503, 400]
    wait_until(lambda: client.get(f"/api/v1/playback/progress/{item}").status_code != 503,
               "the store to come back after the lock was released")
    assert client.get(f"/api/v1/playback/progress/{item}").json()["version"] == 0
    ok = put(client, item, position_seconds=6)
    assert ok.status_code == 200 and ok.json()["position_seconds"] == 6


def test_single_item_response_carries_the_callers_progress(env: Env, client: httpx.Client) -> None:
    item = env.episode["id"]
    reset(client, item)
    put(client, item, position_seconds=33, device_id="phone")
    mine = client.get(f"/api/v1/items/{item}").json()
    assert mine["id"] == item and mine["progress"]["position_seconds"] == 33
    assert mine["progress"] == client.get(f"/api/v1/playback/progress/{item}").json()
    theirs = httpx.get(env.url(f"/api/v1/items/{item}"), headers=env.bob).json()
    assert theirs["progress"]["version"] == 0
