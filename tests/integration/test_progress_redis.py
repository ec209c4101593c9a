"""The Dragonfly/Redis progress store against a real redis-server: declared keys and hash slots, script
cache loss, server restarts and outages (store level and through a live app), and two app instances
sharing one server. The rules themselves are checked by test_progress_contract.py and
test_progress_redis_vs_rules.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import ResponseError

from revenge.config import load_settings
from revenge.errors import StoreUnavailable
from revenge.progress import rules
from revenge.progress.model import DEFAULT_POLICIES, ProgressState, ProgressUpdate
from revenge.progress.scripts import KEY_GUARD_LUA, rules_lua
from revenge.progress.store_dragonfly import DragonflyStore, continue_key, script_keys
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, redis_server, running_redis  # noqa: F401  (fixture)

S = 1000
T0 = 1_700_000_000_000
EPISODE = "e" * 16
LUA_DIR = Path(__file__).resolve().parents[2] / "revenge" / "progress" / "lua"
RECOVERY_TIMEOUT_S = 120.0  # generous: a hang must fail, a slow shared machine must not


def upd(position_ms: int, ts: int, *, user: str = "1", item: str = EPISODE, device: str = "phone",
        duration_ms: int = 3_600 * S) -> ProgressUpdate:
    return ProgressUpdate(user_id=user, item_id=item, item_type="episode", duration_ms=duration_ms,
                          position_ms=position_ms, event="progress", device_id=device, event_ts_ms=ts,
                          received_ms=ts)


def fold(updates: list[ProgressUpdate]) -> ProgressState:
    state = rules.apply_updates(None, updates, DEFAULT_POLICIES["episode"])
    assert state is not None
    return state


def without_devices(state: ProgressState | None) -> ProgressState:
    """``state`` as a write answers it (apply_batch leaves device rows out)."""
    assert state is not None
    return dataclasses.replace(state, devices={})


@pytest.fixture
async def store(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[DragonflyStore]:  # noqa: F811
    s = DragonflyStore(redis_server.url, load_settings(None, env={}, data_dir=tmp_path,
                                                       store_timeout_seconds=0.5), key_guard=True)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


# --- every key a script touches is declared, and all of one call's keys share a slot -----------------

_CALL_RE = re.compile(r"redis\.p?call\(\s*'(\w+)'\s*,\s*([^,)]+)")
_DECLARED_KEY_RE = re.compile(r"^(K_STATE|K_DEVICES|(?:ZSETS|RECENT|PLAYS)\[[\w.]+\]|KEYS\[\d+\])$")


def test_lua_sources_only_use_declared_keys() -> None:
    """By inspection: the key argument of every redis.call is KEYS[n] or a name bound only to KEYS."""
    sources = {p.name: p.read_text() for p in sorted(LUA_DIR.glob("*.lua"))}
    assert {"common.lua", "apply_updates.lua", "modify.lua", "read.lua", "reset.lua"} <= set(sources)
    calls = [(name, cmd, key.strip())
             for name, text in sources.items() for cmd, key in _CALL_RE.findall(text)]
    assert len(calls) >= 12
    for name, cmd, key in calls:
        assert _DECLARED_KEY_RE.match(key), f"{name}: redis.call('{cmd}', {key}, …) uses an undeclared key"
    text = "\n".join(sources.values())
    # The names the calls use are bound in common.lua, and only to KEYS entries: select_item takes them
    # from ITEMS, whose entries are two KEYS and a table (per kind) of tables of KEYS.
    assert re.findall(r"\bK_STATE, K_DEVICES\s*=\s*([^\n]+)", text) == ["item[1], item[2]"]
    assert re.findall(r"\bZSETS, RECENT, PLAYS\s*=\s*([^\n]+)", text) == ["item[3].c, item[3].r, item[3].n"]
    names = r"(?:K_STATE|K_DEVICES|ZSETS|RECENT|PLAYS)"
    assignments = rf"(?m)^\s*(?:local\s+)?((?:\w+,\s*)*{names}(?:,\s*\w+)*)\s*=(?!=)"
    assert re.findall(assignments, text) == ["K_STATE, K_DEVICES", "ZSETS, RECENT, PLAYS"]
    assert re.findall(r"local item = (ITEMS\[[^\]]*\])", text) == ["ITEMS[n]"]
    assert re.findall(r"\bITEMS\[[^\]]*\]\s*=\s*([^\n]+)", text) == ["{KEYS[i], KEYS[i + 1], sets}"]
    assert re.findall(r"\bsets\[[^\]]*\](?:\[[^\]]*\])*\s*=\s*([^\n]+)", text) == ["KEYS[i]"]
    assert re.findall(r"\bsets\s*=", text) == [] and re.findall(r"\bsets, in_sets\s*=\s*([^\n]+)", text) == [
        "{c = {}, r = {}, n = {}}, true  -- a new user's group"]
    assert re.findall(rf"\b{names}\[[^\]]*\]\s*=", text) == []
    # No command is built from a string the script makes up (e.g. redis.call(cmd, 'rv:' .. x)).
    assert text.count("redis.call(") + text.count("redis.pcall(") == len(calls)


def test_key_guard_refuses_an_undeclared_key(redis_server: RedisServer) -> None:  # noqa: F811
    """The guard the tests run the scripts under really fails on an undeclared key (as Dragonfly does)."""
    with redis.Redis.from_url(redis_server.url) as client:
        ok = KEY_GUARD_LUA + "return redis.call('HGET', KEYS[1], 'f')"
        assert client.eval(ok, 1, "rv:{1}:p:x") is None
        sneaky = KEY_GUARD_LUA + "return redis.call('HGET', 'rv:{1}:p:other', 'f')"
        with pytest.raises(ResponseError, match="undeclared key"):
            client.eval(sneaky, 1, "rv:{1}:p:x")


def test_keys_of_one_call_share_a_slot_on_a_cluster_node(tmp_path: Path) -> None:
    """On a real cluster-mode redis-server (one node owning every slot), which refuses CROSSSLOT calls
    and scripts that reach keys of other slots: every key of a call hashes to one slot (CLUSTER KEYSLOT),
    different users land on different slots, and the whole store works there."""
    with running_redis(tmp_path / "cluster", cluster=True) as server:
        with redis.Redis.from_url(server.url) as client:
            slots = {}
            for user in ("1", "42", "123456"):
                keys = script_keys(user, EPISODE)
                user_slots = {client.cluster("KEYSLOT", k) for k in keys}
                assert len(user_slots) == 1, keys
                slots[user] = user_slots.pop()
            assert len(set(slots.values())) == 3
            # The check is live: a call whose keys span two users is refused.
            with pytest.raises(ResponseError, match="same slot"):
                client.eval("return 1", 2, script_keys("1", EPISODE)[0], script_keys("42", EPISODE)[0])
            # And so is a script reaching, undeclared, into another user's slot.
            with pytest.raises(ResponseError, match="same slot"):
                client.eval("#!lua\nreturn redis.call('GET', 'rv:{42}:p:x')", 1, script_keys("1", EPISODE)[0])
        asyncio.run(_exercise_every_script(server.url, tmp_path))


async def _exercise_every_script(url: str, data_dir: Path) -> None:
    store = DragonflyStore(url, load_settings(None, env={}, data_dir=data_dir), key_guard=True)
    await store.open()
    try:
        updates = [upd(40 * S * i, T0 + i * S, user=str(i % 3 + 1), device=f"d{i % 4}") for i in range(30)]
        states = await store.apply_batch(updates)
        assert [s.position_ms for s in states] == [u.position_ms for u in updates]
        assert without_devices(await store.get("2", EPISODE)) == states[-2]
        assert [s.item_id for s in await store.continue_listening("1", None, 10, T0 + 60 * S)] == [EPISODE]
        await store.set_hidden("1", EPISODE, "episode", 3_600 * S, True, T0 + 60 * S)
        await store.mark_played("2", EPISODE, "episode", 3_600 * S, T0 + 60 * S)
        await store.mark_unplayed("2", EPISODE, "episode", 3_600 * S, T0 + 61 * S)
        assert await store.reset("3", EPISODE) is True
    finally:
        await store.close()


# --- script cache loss, restarts, outages ------------------------------------------------------------

async def test_script_flush_is_survived(store: DragonflyStore, redis_server: RedisServer) -> None:  # noqa: F811
    first = [upd(10 * S * i, T0 + i * S) for i in range(1, 6)]
    await store.apply_batch(first)
    with redis.Redis.from_url(redis_server.url) as client:
        client.script_flush()
    second = [upd(10 * S * i, T0 + i * S) for i in range(6, 12)]
    states = await store.apply_batch(second)
    assert states[-1] == without_devices(fold(first + second))
    assert await store.get("1", EPISODE) == fold(first + second)


async def test_batches_larger_than_a_pipeline_go_in_chunks_in_order(redis_server: RedisServer,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    small = DragonflyStore(redis_server.url, load_settings(None, env={}, data_dir=tmp_path), pipeline_max=7)
    await small.open()
    try:
        updates = [upd(S * i, T0 + i, item=item, device=f"d{i % 3}")
                   for i in range(1, 60) for item in (EPISODE, "f" * 16)]
        states = await small.apply_batch(updates)
        assert [s.version for s in states if s.item_id == EPISODE] == list(range(1, 60))
        assert states[-1] == without_devices(fold([u for u in updates if u.item_id == "f" * 16]))
    finally:
        await small.close()


async def test_restart_keeps_acknowledged_updates_and_the_store_reconnects(
        store: DragonflyStore, redis_server: RedisServer) -> None:  # noqa: F811
    updates = [upd(S * i, T0 + i * S, user=str(i % 7), device=f"d{i % 5}") for i in range(300)]
    acknowledged = await store.apply_batch(updates)
    await asyncio.to_thread(redis_server.restart, hard=True)  # SIGKILL: only the fsynced AOF survives
    for user in {u.user_id for u in updates}:
        last = [s for s in acknowledged if s.user_id == user][-1]
        assert without_devices(await store.get(user, EPISODE)) == last
    # Same store object, no reopen: the dead connections were replaced and the scripts reloaded.
    (after,) = await store.apply_batch([upd(999 * S, T0 + 999 * S, user="0")])
    assert after.position_ms == 999 * S


async def test_outage_is_store_unavailable_then_recovers(store: DragonflyStore,
                                                        redis_server: RedisServer) -> None:  # noqa: F811
    await store.apply_batch([upd(S, T0)])
    await store.ping()
    assert store.last_ping_ms is not None and store.last_ping_ms > 0
    redis_server.stop(hard=True)
    with pytest.raises(StoreUnavailable):
        await store.apply_batch([upd(2 * S, T0 + S)])
    with pytest.raises(StoreUnavailable):
        await store.get("1", EPISODE)
    with pytest.raises(StoreUnavailable):
        await store.continue_listening("1", None, 20, T0)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    redis_server.start()
    (state,) = await store.apply_batch([upd(3 * S, T0 + 2 * S)])
    assert state.position_ms == 3 * S and state.version >= 2


async def test_a_hung_server_is_a_timeout_not_a_hang(store: DragonflyStore,
                                                     redis_server: RedisServer) -> None:  # noqa: F811
    await store.apply_batch([upd(S, T0)])
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(StoreUnavailable):
            await store.apply_batch([upd(2 * S, T0 + S)])
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    (state,) = await store.apply_batch([upd(3 * S, T0 + 2 * S)])
    assert state.position_ms == 3 * S


async def test_users_share_calls_on_a_single_server(store: DragonflyStore,
                                                     redis_server: RedisServer) -> None:  # noqa: F811
    """Off a cluster one call carries many users' updates, so the per-call costs are paid once; a user met
    again after others gets a new group of keys; every state is still the rules' own, in order."""
    items = ("a" * 16, "b" * 16, EPISODE)
    updates = [upd(37 * S * i, T0 + i * S, user=str(i % 7 + 1), item=items[i % 3], device=f"d{i % 2}")
               for i in range(60)]
    with redis.Redis.from_url(redis_server.url) as client:
        client.config_resetstat()
        states = await store.apply_batch(updates)
        assert client.info("commandstats")["cmdstat_evalsha"]["calls"] == 1
    for n, (update, state) in enumerate(zip(updates, states, strict=True)):
        same_key = [u for u in updates[:n + 1] if (u.user_id, u.item_id) == (update.user_id, update.item_id)]
        assert state == without_devices(fold(same_key))
    for user in ("1", "7"):
        want = fold([u for u in updates if (u.user_id, u.item_id) == (user, EPISODE)])
        assert await store.get(user, EPISODE) == want
    # Each item went into its own user's continue set (the groups' sets), and only there.
    for user in map(str, range(1, 8)):
        played = {u.item_id for u in updates if u.user_id == user and u.position_ms >= 30 * S}
        shelf = await store.continue_listening(user, "episode", 10, T0 + 120 * S)
        assert {state.item_id for state in shelf} == played
        with redis.Redis.from_url(redis_server.url) as client:
            assert {m.decode() for m in client.zrange(continue_key(user, "episode"), 0, -1)} == played


def test_rules_lua_is_a_table_literal_of_the_policies() -> None:
    text = rules_lua(DEFAULT_POLICIES)
    assert text.startswith("local RULES = {") and "complete_percent = 95.0" in text
    assert "replay = {progress = true, seek = true, start = true}" in text
    audiobook = text[text.index("audiobook = "):]
    assert "complete_percent" not in audiobook  # None: left out, so nil in Lua
    from dataclasses import replace

    with pytest.raises(ValueError, match="finite"):
        nan = replace(DEFAULT_POLICIES["track"], play_percent=float("nan"))
        rules_lua({**DEFAULT_POLICIES, "track": nan})


async def test_policies_are_arguments_not_constants(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """A store built with other thresholds completes where those say (the Lua has no numbers of its own)."""
    from dataclasses import replace

    policies = {**DEFAULT_POLICIES, "episode": replace(DEFAULT_POLICIES["episode"], complete_percent=50.0,
                                                       complete_remaining_ms=None)}
    custom = DragonflyStore(redis_server.url, load_settings(None, env={}, data_dir=tmp_path), policies)
    await custom.open()
    try:
        (half,) = await custom.apply_batch([upd(1_800 * S, T0)])
        assert half.completed
        (other,) = await custom.apply_batch([upd(1_799 * S, T0, item="f" * 16)])
        assert not other.completed
    finally:
        await custom.close()


# --- through a live app: outage mid-stream, and two instances sharing one server ----------------------

@pytest.fixture(scope="module")
def podcast_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("redis-podcasts")
    for n in range(1, 7):
        write_audio(base / "show" / f"ep{n}.flac", seconds=600, rate=8000, channels=1, kind="silence",
                    tags={"title": f"Episode {n}"})
    return base


def _app(data: Path, podcasts: Path, store_url: str) -> tuple[Any, dict[str, str]]:
    key = add_user(data, "alice")
    settings = settings_for(data, podcasts=(podcasts,), store=store_url, store_timeout_seconds=1.0)
    return live_server(settings), {"Authorization": f"Bearer {key}"}


def _episode_ids(live: LiveServer, headers: dict[str, str]) -> list[str]:
    body = httpx.get(live.url + "/api/v1/items?type=episode&limit=100", headers=headers, timeout=10).json()
    return sorted(i["id"] for i in body["items"])


def test_redis_restart_mid_stream_of_acknowledged_puts(redis_server: RedisServer, podcast_dir: Path,  # noqa: F811
                                                       tmp_path: Path) -> None:
    server, headers = _app(tmp_path / "data", podcast_dir, redis_server.url)
    with server as live:
        items = _episode_ids(live, headers)
        assert len(items) == 6
        outcome = asyncio.run(_stream_through_restart(live.url, headers, items, redis_server))
        assert outcome["unavailable"] > 0, "the restart went unnoticed: the test proved nothing"
        assert outcome["retry_after_missing"] == 0
        assert outcome["other_statuses"] == {}
        with httpx.Client(base_url=live.url, headers=headers, timeout=10) as client:
            for item in items:
                body = client.get(f"/api/v1/playback/progress/{item}").json()
                acked = outcome["last_acked"][item]
                assert body["position_ms"] == acked, item
                assert body["version"] >= outcome["acked"][item], item  # no acknowledged update lost
                assert body["devices"][0]["position_ms"] == acked


async def _stream_through_restart(url: str, headers: dict[str, str], items: list[str],
                                  server: RedisServer) -> dict[str, Any]:
    """One writer per item sends PUTs (position +1 s each) back to back; after enough acks the Redis
    server is SIGKILLed and restarted 0.5 s later; writers go on until enough acks after the restart,
    and each stops only on an acknowledged update."""
    acked = dict.fromkeys(items, 0)
    last_acked = dict.fromkeys(items, 0)
    stats: dict[str, Any] = {"unavailable": 0, "retry_after_missing": 0, "other_statuses": {}}
    enough_acks = asyncio.Event()
    restarted = asyncio.Event()
    acks_after_restart = 0
    total = 0

    deadline = time.monotonic() + RECOVERY_TIMEOUT_S

    async def writer(client: httpx.AsyncClient, item: str) -> None:
        nonlocal acks_after_restart, total
        second = 0
        while True:
            assert time.monotonic() < deadline, "the app did not recover from the Redis restart"
            second += 1
            body = {"position_seconds": second, "duration_seconds": 600, "event": "progress",
                    "device_id": "phone", "client_ts": T0 + second * S}
            r = await client.put(f"/api/v1/playback/progress/{item}", json=body)
            if r.status_code == 200:
                acked[item] += 1
                last_acked[item] = second * S
                total += 1
                if total >= 300:
                    enough_acks.set()
                if restarted.is_set():
                    acks_after_restart += 1
                    if acks_after_restart >= 300:
                        return
            elif r.status_code == 503:
                stats["unavailable"] += 1
                if "retry-after" not in r.headers:
                    stats["retry_after_missing"] += 1
                await asyncio.sleep(0.01)
            else:
                stats["other_statuses"][r.status_code] = stats["other_statuses"].get(r.status_code, 0) + 1
                return

    async def chaos() -> None:
        await enough_acks.wait()
        await asyncio.to_thread(server.restart, hard=True, down_seconds=0.5)
        restarted.set()

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        await asyncio.gather(chaos(), *(writer(client, item) for item in items))
    return {**stats, "acked": acked, "last_acked": last_acked}


@pytest.fixture
def two_instances(redis_server: RedisServer, podcast_dir: Path,  # noqa: F811
                  tmp_path: Path) -> Iterator[tuple[list[httpx.Client], list[str]]]:
    first, first_headers = _app(tmp_path / "a", podcast_dir, redis_server.url)
    second, second_headers = _app(tmp_path / "b", podcast_dir, redis_server.url)
    with first as a, second as b:
        items = _episode_ids(a, first_headers)
        assert items == _episode_ids(b, second_headers)  # ids depend on the library, not the instance
        with (httpx.Client(base_url=a.url, headers=first_headers, timeout=10) as ca,
              httpx.Client(base_url=b.url, headers=second_headers, timeout=10) as cb):
            yield [ca, cb], items


def test_two_instances_share_one_state(two_instances: tuple[list[httpx.Client], list[str]]) -> None:
    """A client alternating between two instances sees one state: every write on one is what the other
    reads next (same version, position and device rows), including a stale offline update arriving
    late, a rewind, mark played, hide and the continue-listening list."""
    clients, items = two_instances
    item = items[0]
    path = f"/api/v1/playback/progress/{item}"
    now = time.time_ns() // 1_000_000

    def put(n: int, position_s: float, device: str, ts: int, event: str = "progress") -> dict[str, Any]:
        body = {"position_seconds": position_s, "event": event, "device_id": device, "client_ts": ts}
        r = clients[n % 2].put(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def read_both() -> dict[str, Any]:
        a, b = (c.get(path).json() for c in clients)
        assert a == b
        return a

    steps = [
        (100, "phone", now - 600_000, "start"),
        (120, "phone", now - 580_000, "progress"),   # phone goes offline at 2:00
        (130, "laptop", now - 300_000, "start"),
        (400, "laptop", now - 30_000, "progress"),
        (150, "phone", now - 560_000, "progress"),   # the phone's stale update arrives late
        (50, "laptop", now - 20_000, "seek"),        # a deliberate rewind
    ]
    version = 0
    for n, (position, device, ts, event) in enumerate(steps):
        written = put(n, position, device, ts, event)
        assert written["version"] == version + 1
        version = written["version"]
        assert {k: v for k, v in read_both().items() if k != "devices"} == written
    final = read_both()
    assert final["position_seconds"] == 50 and final["device_id"] == "laptop"
    assert {d["device_id"]: d["position_seconds"] for d in final["devices"]} == {"laptop": 50, "phone": 150}

    # Continue listening, hide and played, each written on one instance and read on the other.
    put(0, 200, "phone", now - 1_000)
    lists = [c.get("/api/v1/playback/continue?type=episode").json()["items"] for c in clients]
    assert lists[0] == lists[1]
    assert [e["item"]["id"] for e in lists[0]] == [item]
    assert clients[1].post(path + "/hidden").status_code == 200
    assert clients[0].get("/api/v1/playback/continue?type=episode").json()["items"] == []
    assert clients[0].post(path + "/played").status_code == 200
    done = read_both()
    assert done["completed"] and done["position_seconds"] == 600 and done["hidden"]
