"""Scrobbles, listening stats and bookmarks over HTTP: a real uvicorn server, a real scanned library
(generated media), the SQLite store; and the progress → scrobble hook with the Redis store too."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.library.model import Chapter
from revenge.playback import bookmarks as bookmark_rules
from revenge.progress import rules
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)

MIN = 60_000
DAY_MS = 86_400_000
USERS = ("alice", "bob", "hook", "stats", "marks", "outage")


@dataclass
class Env:
    live: LiveServer
    keys: dict[str, dict[str, str]]
    track: dict[str, Any]
    episode: dict[str, Any]
    book: dict[str, Any]

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.live.url, headers=self.keys[user], timeout=30)


def write_library(base: Path) -> None:
    # Silence at a low rate in FLAC: minutes of audio in a few KB, probed exactly.
    write_audio(base / "music" / "song.flac", seconds=200, rate=8000, channels=1, kind="silence",
                tags={"title": "Song"})
    write_audio(base / "podcasts" / "show" / "ep1.flac", seconds=600, rate=8000, channels=1,
                kind="silence", tags={"title": "Episode 1"})
    for part in (1, 2):
        write_audio(base / "books" / "Book" / f"part{part}.flac", seconds=300, rate=8000, channels=1,
                    kind="silence", tags={"title": f"Part {part}"})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("records-http")
    write_library(base)
    data = base / "data"
    keys = {name: {"Authorization": f"Bearer {add_user(data, name)}"} for name in USERS}
    settings = settings_for(data, library=(base / "music",), podcasts=(base / "podcasts",),
                             audiobooks=(base / "books",))
    with live_server(settings) as live:
        items = httpx.get(live.url + "/api/v1/items", headers=keys["alice"], timeout=10).json()["items"]
        by_type = {i["type"]: i for i in items}
        book = httpx.get(live.url + f"/api/v1/items/{by_type['audiobook']['id']}", headers=keys["alice"],
                         timeout=10).json()
        yield Env(live, keys, by_type["track"], by_type["episode"], book)


def same_day_start() -> int:
    """A listen start in the past from which the next half hour stays on one UTC day: listens counted
    on ``utc_date(start)`` must not straddle midnight, whatever time of day the suite runs (01:00 UTC of
    the day six hours ago: 5 to 29 hours back)."""
    return (now_ms() - 6 * 60 * MIN) // DAY_MS * DAY_MS + 60 * MIN


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def utc_date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def day_stats(client: httpx.Client, date: str) -> dict[str, Any]:
    r = client.get("/api/v1/stats/listening", params={"from": date, "to": date})
    assert r.status_code == 200, r.text
    (day,) = r.json()["days"]
    assert day["date"] == date
    return day


def scrobble(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/v1/playback/scrobble", json=body)


# --- auth ---------------------------------------------------------------------------------------------

def test_every_route_needs_the_api_key(env: Env) -> None:
    item = env.track["id"]
    calls = [("POST", "/api/v1/playback/scrobble"), ("GET", "/api/v1/stats/listening"),
             ("GET", f"/api/v1/items/{item}/bookmarks"), ("POST", f"/api/v1/items/{item}/bookmarks"),
             ("DELETE", f"/api/v1/items/{item}/bookmarks/{'a' * 16}")]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = httpx.request(method, env.live.url + path, headers=headers, json={}, timeout=10)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"


# --- scrobbles ----------------------------------------------------------------------------------------

def test_scrobble_created_then_duplicate_and_longest_report_wins(env: Env) -> None:
    item = env.track["id"]
    started = now_ms() - 10 * MIN
    with env.client("alice") as client:
        first = scrobble(client, item_id=item, started_at=started, listened_seconds=120.5, device_id="phone")
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["duplicate"] is False
        record = body["scrobble"]
        assert record == {**record, "id": f"{item}-{started}", "item_id": item, "item_type": "track",
                          "started_at": started, "listened_seconds": 120.5, "device_id": "phone",
                          "source": "client", "sent": False, "sent_at": None, "deliveries": {}}
        assert started < record["recorded_at"] <= now_ms()
        again = scrobble(client, item_id=item, started_at=started, listened_seconds=30, device_id="car")
        assert again.status_code == 200 and again.json() == {"scrobble": record, "duplicate": True}
        longer = scrobble(client, item_id=item, started_at=started, listened_seconds=200)
        assert longer.status_code == 200 and longer.json()["duplicate"] is True
        assert longer.json()["scrobble"] == {**record, "listened_seconds": 200.0}
        # Another start time is another listen; device_id is optional (null or absent: "unknown").
        other = scrobble(client, item_id=item, started_at=started + 1, listened_seconds=1, device_id=None)
        assert other.status_code == 201 and other.json()["scrobble"]["device_id"] == "unknown"
    # The same listen key is another user's own listen.
    with env.client("bob") as client:
        theirs = scrobble(client, item_id=item, started_at=started, listened_seconds=10)
        assert theirs.status_code == 201 and theirs.json()["duplicate"] is False


@pytest.mark.parametrize(("body", "field"), [
    ({}, "item_id"),
    ({"item_id": 5, "started_at": 0, "listened_seconds": 1}, "item_id"),
    ({"item_id": "NOT-AN-ID", "listened_seconds": 1}, "started_at"),
    ({"item_id": "NOT-AN-ID", "started_at": "now", "listened_seconds": 1}, "started_at"),
    ({"item_id": "NOT-AN-ID", "started_at": True, "listened_seconds": 1}, "started_at"),
    ({"item_id": "NOT-AN-ID", "started_at": "NOW-10M", "listened_seconds": 1}, "item_id"),
    ({"item_id": "TRACK", "started_at": "SECONDS", "listened_seconds": 1}, "started_at"),
    ({"item_id": "TRACK", "started_at": "FUTURE", "listened_seconds": 1}, "started_at"),
    ({"item_id": "TRACK", "started_at": "NOW-10M"}, "listened_seconds"),
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": -0.5}, "listened_seconds"),
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": "60"}, "listened_seconds"),
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": 601.5}, "listened_seconds"),  # > 3×200
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": 1, "device_id": ""}, "device_id"),
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": 1, "device_id": "../x"}, "device_id"),
    ({"item_id": "TRACK", "started_at": "NOW-10M", "listened_seconds": 1, "device_id": 7}, "device_id"),
    ([1, 2], "body"),
])
def test_invalid_scrobbles_name_the_field(env: Env, body: Any, field: str) -> None:
    now = now_ms()
    values = {"TRACK": env.track["id"], "NOW-10M": now - 10 * MIN, "SECONDS": now // 1000,
              "FUTURE": now + 3_600_000}
    if isinstance(body, dict):
        body = {k: values.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    with env.client("alice") as client:
        r = client.post("/api/v1/playback/scrobble", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_non_json_unknown_item_and_the_bounds_that_pass(env: Env) -> None:
    with env.client("alice") as client:
        for raw in (b"nope", b'{"item_id": "x", "started_at": NaN}', b""):
            r = client.post("/api/v1/playback/scrobble", content=raw)
            assert r.status_code == 400 and r.json()["error"]["field"] == "body"
        r = scrobble(client, item_id="a" * 16, started_at=now_ms(), listened_seconds=1)
        assert r.status_code == 404 and r.json()["error"]["field"] == "item_id"
        # A clock a little ahead and a listen of 3× the item (with repeats) are accepted.
        ok = scrobble(client, item_id=env.track["id"], started_at=now_ms() + 60_000, listened_seconds=600)
        assert ok.status_code == 201, ok.text


# --- stats --------------------------------------------------------------------------------------------

def test_stats_aggregate_by_utc_day_and_type(env: Env) -> None:
    midnight = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
    listens = [
        (env.track["id"], midnight + 1000, 100),
        (env.track["id"], midnight + 2000, 50.5),
        (env.episode["id"], midnight + DAY_MS - 1, 600),  # started before midnight: counts on Mar 1
        (env.book["id"], midnight + DAY_MS, 900),
        (env.book["id"], midnight + 3 * DAY_MS, 60),  # outside the range asked below
        (env.track["id"], midnight - 1, 7),  # Feb 29: outside too
    ]
    with env.client("stats") as client:
        for item, started, seconds in listens:
            r = scrobble(client, item_id=item, started_at=started, listened_seconds=seconds)
            assert r.status_code == 201, r.text
        # A repeat does not count twice.
        assert scrobble(client, item_id=env.track["id"], started_at=midnight + 1000,
                        listened_seconds=10).status_code == 200
        r = client.get("/api/v1/stats/listening", params={"from": "2024-03-01", "to": "2024-03-03"})
        assert r.status_code == 200, r.text
        body = r.json()
    zero = {"seconds": 0.0, "listens": 0}
    assert body == {
        "from": "2024-03-01", "to": "2024-03-03",
        "days": [
            {"date": "2024-03-01", "track": {"seconds": 150.5, "listens": 2},
             "episode": {"seconds": 600.0, "listens": 1}, "audiobook": zero,
             "total": {"seconds": 750.5, "listens": 3}},
            {"date": "2024-03-02", "track": zero, "episode": zero,
             "audiobook": {"seconds": 900.0, "listens": 1}, "total": {"seconds": 900.0, "listens": 1}},
            {"date": "2024-03-03", "track": zero, "episode": zero, "audiobook": zero, "total": zero},
        ],
        "totals": {"track": {"seconds": 150.5, "listens": 2}, "episode": {"seconds": 600.0, "listens": 1},
                   "audiobook": {"seconds": 900.0, "listens": 1}, "total": {"seconds": 1650.5, "listens": 4}},
    }
    # Nobody else sees them.
    with env.client("bob") as client:
        params = {"from": "2024-03-01", "to": "2024-03-03"}
        theirs = client.get("/api/v1/stats/listening", params=params).json()
    assert theirs["totals"]["total"] == zero


def test_stats_default_range_and_validation(env: Env) -> None:
    with env.client("stats") as client:
        before = dt.datetime.now(dt.UTC).date()
        body = client.get("/api/v1/stats/listening").json()
        after = dt.datetime.now(dt.UTC).date()
        assert len(body["days"]) == 30 and body["to"] in (before.isoformat(), after.isoformat())
        assert body["days"][0]["date"] == body["from"] and body["days"][-1]["date"] == body["to"]
        one = client.get("/api/v1/stats/listening", params={"from": "2023-01-01"}).json()
        assert (one["from"], one["to"]) == ("2023-01-01", "2023-01-30")
        full_year = client.get("/api/v1/stats/listening", params={"from": "2024-01-01", "to": "2024-12-31"})
        assert full_year.status_code == 200 and len(full_year.json()["days"]) == 366
        cases = (({"from": "2024-1-01"}, "from"), ({"to": "tomorrow"}, "to"),
                 ({"from": "2024-02-30"}, "from"), ({"from": "2024-03-02", "to": "2024-03-01"}, "to"),
                 ({"from": "2023-01-01", "to": "2024-12-31"}, "from"))
        for params, field in cases:
            r = client.get("/api/v1/stats/listening", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["error"]["field"] == field


# --- the progress → scrobble hook ---------------------------------------------------------------------

def play_track(client: httpx.Client, item: str, start: int, until_s: int, step_s: int = 10) -> dict[str, Any]:
    """One listen through PUTs: a start at 0, then progress in real (event) time up to ``until_s``."""
    r = client.put(f"/api/v1/playback/progress/{item}", json={"position_seconds": 0, "event": "start",
                                                               "device_id": "phone", "client_ts": start})
    assert r.status_code == 200, r.text
    body = r.json()
    for s in range(step_s, until_s + 1, step_s):
        r = client.put(f"/api/v1/playback/progress/{item}",
                       json={"position_seconds": s, "device_id": "phone", "client_ts": start + s * 1000})
        assert r.status_code == 200, r.text
        body = r.json()
    return body


def check_hook(live: LiveServer, headers: dict[str, str], track: str) -> None:
    """A track played past 50 % via PUTs records exactly one scrobble, a second listen another, a listen
    that stops short none; the player's own scrobble of the same listen is a duplicate."""
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as client:
        start = same_day_start()
        date = utc_date(start)
        before = day_stats(client, date)["track"]["listens"]
        progress = play_track(client, track, start, 200)
        assert progress["play_count"] == 1
        after_one = day_stats(client, date)["track"]
        assert after_one["listens"] == before + 1
        assert after_one["seconds"] >= 100.0  # heard when the play counted: at least half of 200 s
        mine = scrobble(client, item_id=track, started_at=start, listened_seconds=200, device_id="phone")
        assert mine.status_code == 200, mine.text
        assert mine.json()["duplicate"] is True
        record = mine.json()["scrobble"]
        assert record["source"] == "progress" and record["started_at"] == start
        assert record["listened_seconds"] == 200.0  # the player's longer report wins
        # A second listen is another scrobble; one stopped at 40 % is none.
        assert play_track(client, track, start + 10 * MIN, 200)["play_count"] == 2
        assert play_track(client, track, start + 20 * MIN, 80)["play_count"] == 2
        assert day_stats(client, date)["track"]["listens"] == before + 2


def test_progress_hook_over_puts(env: Env) -> None:
    check_hook(env.live, env.keys["hook"], env.track["id"])


def test_progress_hook_over_a_batch_replay(env: Env) -> None:
    track = env.track["id"]
    start = same_day_start()
    listens = [[{"item_id": track, "position_seconds": 0, "event": "start", "client_ts": begin}]
               + [{"item_id": track, "position_seconds": s, "client_ts": begin + s * 1000}
                  for s in range(20, 201, 20)]
               for begin in (start, start + 5 * MIN)]
    with env.client("bob") as client:
        date = utc_date(start)
        before = day_stats(client, date)["track"]["listens"]
        r = client.post("/api/v1/playback/progress:batch", json={"updates": listens[0] + listens[1]})
        assert r.status_code == 200 and all(x["status"] == 200 for x in r.json()["results"])
        assert day_stats(client, date)["track"]["listens"] == before + 2
        # Replaying the same offline batch counts nothing new.
        client.post("/api/v1/playback/progress:batch", json={"updates": listens[0] + listens[1]})
        assert day_stats(client, date)["track"]["listens"] == before + 2


async def test_records_outage_fails_the_counting_put_and_its_retry_records_once(env: Env) -> None:
    """records.db locked by another process past the busy timeout: the PUT that counts the play is
    answered 503 + Retry-After (its progress is applied, its scrobble is not); a client scrobble too.
    The retried PUT (same client_ts) records the play, exactly once."""
    track = env.track["id"]
    start = now_ms() - 5 * 60 * MIN
    date = utc_date(start)
    headers = env.keys["outage"]
    with env.client("outage") as client:
        play_track(client, track, start, 90)
        before = day_stats(client, date)["track"]["listens"]
    crossing = {"position_seconds": 100, "device_id": "phone", "client_ts": start + 100_000}
    other = sqlite3.connect(env.live.settings.data_dir / "records.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with httpx.AsyncClient(base_url=env.live.url, headers=headers, timeout=60) as client:
            put, post = await asyncio.gather(
                client.put(f"/api/v1/playback/progress/{track}", json=crossing),
                client.post("/api/v1/playback/scrobble",
                            json={"item_id": env.episode["id"], "started_at": start, "listened_seconds": 5}))
        other.execute("ROLLBACK")
    finally:
        other.close()
    for r in (put, post):
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "unavailable"
    with env.client("outage") as client:
        assert day_stats(client, date)["track"]["listens"] == before
        assert client.get(f"/api/v1/playback/progress/{track}").json()["play_count"] == 1  # applied
        retry = client.put(f"/api/v1/playback/progress/{track}", json=crossing)
        assert retry.status_code == 200 and retry.json()["play_count"] == 1
        client.put(f"/api/v1/playback/progress/{track}", json=crossing)  # and once more: no double
        assert day_stats(client, date)["track"]["listens"] == before + 1


def test_progress_hook_with_the_redis_store(tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    write_library(tmp_path)
    data = tmp_path / "data"
    headers = {"Authorization": f"Bearer {add_user(data, 'alice')}"}
    settings = settings_for(data, library=(tmp_path / "music",), store=redis_server.url)
    with live_server(settings) as live:
        (track,) = httpx.get(live.url + "/api/v1/items", headers=headers, timeout=10).json()["items"]
        check_hook(live, headers, track["id"])
        with httpx.Client(base_url=live.url, headers=headers, timeout=30) as client:
            created = client.post(f"/api/v1/items/{track['id']}/bookmarks", json={"position_seconds": 3})
            assert created.status_code == 201
            listed = client.get(f"/api/v1/items/{track['id']}/bookmarks").json()["bookmarks"]
            assert [b["id"] for b in listed] == [created.json()["id"]]
    assert not (data / "records.db").exists()  # the records went to Redis


# --- bookmarks ----------------------------------------------------------------------------------------

def test_bookmarks_add_list_delete(env: Env) -> None:
    item = env.track["id"]
    path = f"/api/v1/items/{item}/bookmarks"
    with env.client("marks") as client:
        t = now_ms()
        late = client.post(path, json={"position_seconds": 150.25, "note": "the bridge 🎸\nsecond line"})
        assert late.status_code == 201, late.text
        body = late.json()
        assert bookmark_rules.is_valid_bookmark_id(body["id"])
        assert body == {**body, "item_id": item, "position_seconds": 150.25, "position_ms": 150_250,
                        "note": "the bridge 🎸\nsecond line"}
        assert t <= body["created_at"] <= now_ms() and "chapter" not in body
        early = client.post(path, json={"position_seconds": 12, "note": None}).json()
        assert early["note"] == ""
        clamped = client.post(path, json={"position_seconds": 10_000, "note": "x" * 1000}).json()
        assert clamped["position_seconds"] == 200.0 and len(clamped["note"]) == 1000
        listed = client.get(path).json()["bookmarks"]
        assert [b["id"] for b in listed] == [early["id"], body["id"], clamped["id"]]
        assert listed[1] == body
    # Another user sees none of them and cannot delete them.
    with env.client("bob") as client:
        assert client.get(path).json() == {"bookmarks": []}
        r = client.delete(f"{path}/{body['id']}")
        assert r.status_code == 404 and r.json()["error"]["field"] == "bookmark_id"
    with env.client("marks") as client:
        wrong_item = client.delete(f"/api/v1/items/{env.episode['id']}/bookmarks/{body['id']}")
        assert wrong_item.status_code == 404
        for junk in ("short", "a" * 17, "..%2F..%2Fetc"):
            assert client.delete(f"{path}/{junk}").status_code == 404
        assert client.delete(f"{path}/{body['id']}").status_code == 204
        assert client.delete(f"{path}/{body['id']}").status_code == 404
        assert [b["id"] for b in client.get(path).json()["bookmarks"]] == [early["id"], clamped["id"]]


def test_audiobook_bookmarks_name_their_chapter(env: Env) -> None:
    book = env.book
    chapters = [Chapter(c["index"], c["title"], c["start_ms"], c["end_ms"]) for c in book["chapters"]]
    with env.client("marks") as client:
        body = client.post(f"/api/v1/items/{book['id']}/bookmarks", json={"position_seconds": 310}).json()
    expected = rules.chapter_at(chapters, 310_000)
    assert expected is not None and expected.index == chapters[1].index
    assert body["chapter"] == {"index": expected.index, "title": expected.title}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "position_seconds"),
    ({"position_seconds": -1}, "position_seconds"),
    ({"position_seconds": "5"}, "position_seconds"),
    ({"position_seconds": False}, "position_seconds"),
    ({"position_seconds": 1, "note": "x" * 1001}, "note"),
    ({"position_seconds": 1, "note": 5}, "note"),
    ({"position_seconds": 1, "note": "a\u0000b"}, "note"),
    ("text", "body"),
])
def test_invalid_bookmarks_name_the_field(env: Env, body: Any, field: str) -> None:
    with env.client("marks") as client:
        r = client.post(f"/api/v1/items/{env.episode['id']}/bookmarks", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_bookmark_items_must_exist_and_non_finite_positions_are_refused(env: Env) -> None:
    with env.client("marks") as client:
        r = client.get("/api/v1/items/NOT-AN-ID/bookmarks")
        assert r.status_code == 400 and r.json()["error"]["field"] == "item_id"
        r = client.post(f"/api/v1/items/{'a' * 16}/bookmarks", json={"position_seconds": 1})
        assert r.status_code == 404 and r.json()["error"]["field"] == "item_id"
        for number in (b"NaN", b"Infinity", b"1e999"):
            raw = b'{"position_seconds": ' + number + b"}"
            r = client.post(f"/api/v1/items/{env.episode['id']}/bookmarks", content=raw)
            assert r.status_code == 400 and r.json()["error"]["field"] == "body"  # not JSON
        assert client.get(f"/api/v1/items/{env.episode['id']}/bookmarks").json() == {"bookmarks": []}


def test_bookmark_cap_answers_409(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process: lower the cap instead of posting 500 bookmarks.
    monkeypatch.setattr(bookmark_rules, "MAX_BOOKMARKS_PER_ITEM", 2)
    path = f"/api/v1/items/{env.book['id']}/bookmarks"
    with env.client("bob") as client:
        assert [client.post(path, json={"position_seconds": s}).status_code for s in (1, 2)] == [201, 201]
        r = client.post(path, json={"position_seconds": 3})
        assert r.status_code == 409 and r.json()["error"]["code"] == "too_many"
        assert len(client.get(path).json()["bookmarks"]) == 2
