"""The play queue over real HTTP (uvicorn, a scanned library of generated media) on both stores: two
devices editing at once, next/previous/repeat/shuffle, bad input, a restart, and a frozen Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.config import Settings
from revenge.playback.queue import MAX_ENTRIES
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)

MARGIN_S = 1.0  # scheduling slack on a loaded machine


@dataclass
class Env:
    settings: Settings
    headers: dict[str, str]
    other_headers: dict[str, str]
    server: RedisServer | None
    base: Path


def write_library(base: Path) -> None:
    for n in range(4):
        write_audio(base / "music" / f"song{n}.flac", seconds=30, rate=8000, channels=1, kind="silence",
                    tags={"title": f"Song {n}"})


def make_env(base: Path, server: RedisServer | None) -> Env:
    write_library(base)
    data = base / "data"
    headers = {"Authorization": f"Bearer {add_user(data, 'alice')}"}
    other = {"Authorization": f"Bearer {add_user(data, 'bob')}"}
    store = "sqlite" if server is None else server.url
    settings = settings_for(data, library=(base / "music",), store=store, store_timeout_seconds=0.5)
    return Env(settings, headers, other, server, base)


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return make_env(tmp_path, request.getfixturevalue("redis_server") if request.param == "redis" else None)


@contextlib.contextmanager
def running(env: Env) -> Iterator[tuple[LiveServer, list[str]]]:
    with live_server(env.settings) as live:
        items = httpx.get(live.url + "/api/v1/items?type=track", headers=env.headers, timeout=10).json()
        yield live, sorted(i["id"] for i in items["items"])


def client(live: LiveServer, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers=headers, timeout=30)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_two_devices_editing_one_is_refused_and_sees_the_other_change(env: Env) -> None:
    with running(env) as (live, items), client(live, env.headers) as phone, client(live, env.headers) as car:
        empty = ok(phone.get("/api/v1/queue"))
        assert empty["version"] == 0 and empty["items"] == [] and empty["current_index"] is None
        first = ok(phone.put("/api/v1/queue", json={"version": 0, "device_id": "phone", "items": items[:2],
                                                    "current_index": 1, "position_seconds": 12.5}))
        assert first["version"] == 1 and first["items"] == items[:2] and first["current_index"] == 1
        assert first["position_ms"] == 12_500 and first["changed_by"] == "phone"
        seen = ok(car.get("/api/v1/queue"))
        assert seen == first  # the same queue on every device of the user
        # Both edit version 1: the car first, then the phone, which has not seen the car's change.
        mine = ok(car.patch("/api/v1/queue", json={"version": 1, "device_id": "car",
                                                   "ops": [{"op": "append", "items": [items[2]]}]}))
        assert mine["version"] == 2 and mine["items"] == items[:3]
        refused = phone.patch("/api/v1/queue", json={"version": 1, "device_id": "phone",
                                                     "ops": [{"op": "clear"}]})
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"]["code"] == "conflict" and body["error"]["field"] == "version"
        assert body["queue"] == mine
        # Re-based on what it was shown, the phone's change goes through.
        assert ok(phone.patch("/api/v1/queue", json={"version": 2, "ops": [{"op": "clear"}]}))["version"] == 3
        with client(live, env.other_headers) as bob:
            assert ok(bob.get("/api/v1/queue"))["version"] == 0  # per user


def test_next_previous_repeat_and_shuffle_round_trip(env: Env) -> None:
    with running(env) as (live, items), client(live, env.headers) as phone:
        queue = ok(phone.put("/api/v1/queue", json={"version": 0, "items": items}))
        assert queue["current_index"] == 0

        def step(path: str, **extra: Any) -> dict[str, Any]:
            nonlocal queue
            queue = ok(phone.post(path, json={"version": queue["version"], **extra}))
            return queue

        assert step("/api/v1/queue/next")["current_item_id"] == items[1]
        assert queue["history"] == [items[0]] and queue["position_ms"] == 0
        assert step("/api/v1/queue/previous")["current_index"] == 0
        assert step("/api/v1/queue/previous")["current_index"] == 0  # repeat off: stays at the first
        queue = ok(phone.patch("/api/v1/queue", json={"version": queue["version"],
                                                      "ops": [{"op": "repeat", "mode": "all"}]}))
        assert step("/api/v1/queue/previous")["current_index"] == 3  # wraps
        assert step("/api/v1/queue/next")["current_index"] == 0
        queue = ok(phone.patch("/api/v1/queue", json={"version": queue["version"], "ops": [
            {"op": "set_current", "index": 2, "position_seconds": 3}, {"op": "repeat", "mode": "one"}]}))
        assert step("/api/v1/queue/next")["current_index"] == 2  # repeat one: the same entry again
        shuffled = ok(phone.patch("/api/v1/queue", json={"version": queue["version"],
                                                         "ops": [{"op": "shuffle", "seed": 11}]}))
        assert shuffled["shuffled"] and shuffled["shuffle_seed"] == 11
        assert sorted(shuffled["items"]) == items and shuffled["current_item_id"] == items[2]
        restored = ok(phone.patch("/api/v1/queue", json={"version": shuffled["version"],
                                                         "ops": [{"op": "unshuffle"}]}))
        assert restored["items"] == items and restored["current_item_id"] == items[2]
        assert not restored["shuffled"]


def test_bad_input_names_the_field_and_changes_nothing(env: Env) -> None:
    with running(env) as (live, items), client(live, env.headers) as phone:
        ok(phone.put("/api/v1/queue", json={"version": 0, "items": items[:2]}))

        def refused(method: str, path: str, body: Any, status: int = 400) -> dict[str, Any]:
            path = path or "/api/v1/queue"
            r = phone.request(method, path, json=body)
            assert r.status_code == status, r.text
            error: dict[str, Any] = r.json()["error"]
            return error

        unknown = "z" * 16
        assert refused("PUT", "", {"version": 1, "items": [items[0], unknown]}) == {
            "code": "unknown_item", "message": "no such item in the catalog", "field": "items[1]"}
        assert refused("PATCH", "", {"version": 1, "ops": [
            {"op": "clear"}, {"op": "insert_next", "items": [items[0], unknown]}]}
        )["field"] == "ops[1].items[1]"
        assert refused("PATCH", "", {"version": 1, "ops": [
            {"op": "clear"}, {"op": "remove", "index": 0}]})["field"] == "ops[1].index"
        assert refused("PATCH", "", {"version": 1, "ops": [{"op": "dance"}]})["field"] == "ops[0].op"
        assert refused("PATCH", "", {"version": 1, "ops": [{"op": "repeat", "mode": "x"}]}
                       )["field"] == "ops[0].mode"
        assert refused("PUT", "", {"version": 1, "items": ["NOT-AN-ID"]})["field"] == "items[0]"
        assert refused("PUT", "", {"items": items})["field"] == "version"
        assert refused("PUT", "", {"version": True, "items": items})["field"] == "version"
        bad_device = {"version": 1, "device_id": "bad id"}
        assert refused("POST", "/api/v1/queue/next", bad_device)["field"] == "device_id"
        assert refused("PUT", "", {"version": 1, "items": [items[0]] * (MAX_ENTRIES + 1)},
                       413)["field"] == "items"
        full = ok(phone.put("/api/v1/queue", json={"version": 1, "items": [items[0]] * MAX_ENTRIES}))
        assert len(full["items"]) == MAX_ENTRIES
        assert refused("PATCH", "", {"version": 2, "ops": [{"op": "append", "items": [items[1]]}]},
                       413)["field"] == "ops[0].items"
        assert ok(phone.get("/api/v1/queue"))["version"] == 2
        for method, path in (("GET", "/api/v1/queue"), ("PUT", "/api/v1/queue"), ("PATCH", "/api/v1/queue"),
                             ("POST", "/api/v1/queue/next"), ("POST", "/api/v1/queue/previous")):
            assert httpx.request(method, live.url + path, json={}, timeout=10).status_code == 401


def test_a_restart_keeps_the_queue(env: Env) -> None:
    with running(env) as (live, items), client(live, env.headers) as phone:
        ok(phone.put("/api/v1/queue", json={"version": 0, "items": items, "device_id": "phone"}))
        before = ok(phone.post("/api/v1/queue/next", json={"version": 1}))
    if env.server is not None:
        env.server.restart(hard=True)  # kill -9: what was acknowledged is in the fsynced AOF
    with running(env) as (live, _), client(live, env.headers) as phone:
        assert ok(phone.get("/api/v1/queue")) == before


def test_a_frozen_redis_is_503_on_a_write_in_time_and_the_queue_is_unchanged(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    env = make_env(tmp_path, redis_server)
    server = redis_server
    assert server.process is not None
    bound = env.settings.store_timeout_seconds * 2 + MARGIN_S  # one retry on a fresh connection at most
    with running(env) as (live, items), client(live, env.headers) as phone:
        before = ok(phone.put("/api/v1/queue", json={"version": 0, "items": items}))
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = phone.patch("/api/v1/queue", json={"version": 1, "ops": [{"op": "clear"}]})
            waited = time.monotonic() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert waited <= bound, f"the write waited {waited:.2f} s for its 503 (bound {bound:.2f} s)"
        deadline = time.monotonic() + 60
        while (r := phone.get("/api/v1/queue")).status_code != 200:
            assert time.monotonic() < deadline, "the store did not answer again after SIGCONT"
        assert r.json() == before
