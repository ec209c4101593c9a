"""The local journal closes the hole of a snapshot-only store: a redis-server without append-only file
(Dragonfly's persistence model), killed -9 in the middle of a storm of progress PUTs through real HTTP and
restarted from its last snapshot, loses none of the updates the server acknowledged; the server recovers
by itself (503 while it is down, then the journal is replayed before writes are taken again). The same
holds for the user's progress actions (mark played, hide/show, reset: a replayed mark counts once) and
for the other stores' writes made meanwhile: stars (Subsonic star/unstar), playlists (Subsonic
createPlaylist), the play queue (PUT with its version) and scrobbles."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, running_redis

ITEMS = 4  # stormed by the devices
ACTION_ITEMS = 2  # one marked played and hidden/shown, one reset then written again, every round
DEVICES_PER_ITEM = 2
STORM_TIMEOUT_S = 90.0


@dataclass
class Others:
    """The acknowledged writes of the other stores (all made before the crash)."""

    starred: dict[str, bool] = field(default_factory=dict)  # item → starred by the last acked star/unstar
    playlists: list[str] = field(default_factory=list)  # ids
    queue: tuple[int, list[str]] | None = None  # the last acked version and its items
    scrobbles: list[str] = field(default_factory=list)  # ids (<item>-<started_at>)
    played: int = 0  # acked marks played of the first action item: its completed_count
    hidden: bool | None = None  # its flag by the last acked hide/show
    rewritten: str | None = None  # the device of the last acked PUT on the second, each after a reset
    rounds: int = 0  # rounds of the four, every write acked


@dataclass
class Storm:
    acked: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (item, device) → ts, ms
    answers: dict[int, int] = field(default_factory=dict)  # status → count
    acked_since_restart: int = 0
    restarted: bool = False
    others: Others = field(default_factory=Others)


def serve(tmp_path: Path, redis_url: str, **overrides: object) -> tuple[Iterator[LiveServer], str]:
    for n in range(ITEMS + ACTION_ITEMS):
        write_audio(tmp_path / "podcasts" / "show" / f"ep{n}.flac", seconds=600, rate=8000, channels=1,
                    kind="silence", tags={"title": f"Episode {n}"})
    data = tmp_path / "data"
    key = add_user(data, "alice")
    settings = settings_for(data, podcasts=(tmp_path / "podcasts",), store=redis_url,
                            store_timeout_seconds=1.0, **overrides)
    return live_server(settings), key


def subsonic_ok(response: httpx.Response) -> dict[str, object] | None:
    if response.status_code != 200:
        return None
    body: dict[str, object] = response.json()["subsonic-response"]
    return body if body.get("status") == "ok" else None


async def progress_actions(client: httpx.AsyncClient, actions: list[str], n: int, others: Others) -> bool:
    """A mark played and a hide or show of the first item, a reset of the second and a PUT on it from
    a device of this round; each counted once acknowledged. Whether all were."""
    marked, rewritten = actions
    base = "/api/v1/playback/progress"
    if (await client.post(f"{base}/{marked}/played")).status_code != 200:
        return False
    others.played += 1
    hide = n % 2 == 0
    if (await client.request("POST" if hide else "DELETE", f"{base}/{marked}/hidden")).status_code != 200:
        return False
    others.hidden = hide
    if (await client.delete(f"{base}/{rewritten}")).status_code != 204:
        return False
    others.rewritten = None
    device = f"round{n}"
    r = await client.put(f"{base}/{rewritten}", json={"position_seconds": 60 + n, "event": "progress",
                                                      "device_id": device})
    if r.status_code != 200:
        return False
    others.rewritten = device
    return True


async def other_writes(client: httpx.AsyncClient, key: str, items: list[str], actions: list[str],
                       result: Storm) -> None:
    """Rounds of a star or unstar, a new playlist, a queue PUT, a scrobble and the progress actions,
    until the crash; each write counted once the server answered it."""
    others = result.others
    rest = {"v": "1.16.1", "c": "tests", "f": "json", "apiKey": key}
    version = 0
    n = 0
    while not result.restarted:
        n += 1
        item = items[n % len(items)]
        try:
            star = "unstar" if others.starred.get(item) else "star"
            if subsonic_ok(await client.get(f"/rest/{star}", params={**rest, "id": item})) is None:
                continue
            others.starred[item] = star == "star"
            created = subsonic_ok(await client.get("/rest/createPlaylist",
                                                   params={**rest, "name": f"p{n}", "songId": item}))
            if created is None:
                continue
            others.playlists.append(created["playlist"]["id"])  # type: ignore[index]
            queue_items = [items[(n + k) % len(items)] for k in range(3)]
            r = await client.put("/api/v1/queue", json={"items": queue_items, "version": version,
                                                        "device_id": "writer"})
            if r.status_code == 409:
                version = r.json()["queue"]["version"]
                continue
            if r.status_code != 200:
                continue
            version = r.json()["version"]
            others.queue = (version, queue_items)
            started = time.time_ns() // 1_000_000 - 60_000 + n
            r = await client.post("/api/v1/playback/scrobble",
                                  json={"item_id": item, "started_at": started, "listened_seconds": 40,
                                        "device_id": "writer"})
            if r.status_code not in (200, 201):
                continue
            others.scrobbles.append(f"{item}-{started}")
            if not await progress_actions(client, actions, n, others):
                continue
            others.rounds += 1
        except httpx.TransportError:
            continue
        await asyncio.sleep(0.005)


async def storm(live: LiveServer, key: str, redis: RedisServer, items: list[str],
                actions: list[str]) -> Storm:
    """PUTs from every (item, device) until some were acknowledged after the crash and restart; the
    other stores written meanwhile until the crash."""
    result = Storm()
    stop = asyncio.Event()
    saving = threading.Event()  # cleared: the snapshots pause, so the writes that follow are in none
    saving.set()

    async def device(client: httpx.AsyncClient, item: str, name: str) -> None:
        # Other devices after the restart, so that the rows written before the crash stay as they were
        # then: what the restored server lost of them, only the journal can bring back.
        n = 0
        while not stop.is_set():
            n += 1
            device_id = name + ("-after" if result.restarted else "")
            ts = time.time_ns() // 1_000_000
            position_ms = n * 100 % 590_000
            body = {"position_seconds": position_ms / 1000, "event": "progress", "device_id": device_id,
                    "client_ts": ts}
            try:
                r = await client.put(f"/api/v1/playback/progress/{item}", json=body)
            except httpx.TransportError:
                continue
            result.answers[r.status_code] = result.answers.get(r.status_code, 0) + 1
            if r.status_code == 200:
                result.acked[item, device_id] = (ts, position_ms)  # client_ts: before it arrived
                if result.restarted:
                    result.acked_since_restart += 1
            else:
                assert r.status_code == 503, r.text
                await asyncio.sleep(0.01)  # pacing while the store is down

    def snapshots() -> None:  # what Dragonfly's periodic snapshots do
        while not stop.is_set():
            if saving.is_set():
                redis.save()
            time.sleep(0.2)

    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        saver = threading.Thread(target=snapshots, daemon=True)
        saver.start()
        tasks = [asyncio.create_task(device(client, item, f"dev{d}"))
                 for item in items for d in range(DEVICES_PER_ITEM)]
        tasks.append(asyncio.create_task(other_writes(client, key, items, actions, result)))
        deadline = time.monotonic() + STORM_TIMEOUT_S
        try:
            while (len(result.acked) < len(tasks) - 1 or sum(result.answers.values()) < 300
                   or result.others.rounds < 3):
                assert time.monotonic() < deadline, result.answers
                await asyncio.sleep(0.01)
            # The last snapshot is taken, then a few more rounds of the other writes: they are in no
            # snapshot, so only a journal can bring them back.
            saving.clear()
            await asyncio.sleep(0.5)  # a SAVE under way ends
            rounds = result.others.rounds
            while result.others.rounds < rounds + 3:
                assert time.monotonic() < deadline, result.others
                await asyncio.sleep(0.01)
            await asyncio.to_thread(redis.stop, True)  # kill -9 mid-storm: what follows the last SAVE is lost
            while result.answers.get(503, 0) == 0:
                assert time.monotonic() < deadline, result.answers
                await asyncio.sleep(0.01)
            result.restarted = True
            await asyncio.to_thread(redis.start)  # from its dump.rdb, on the same port
            while result.acked_since_restart < 200:
                assert time.monotonic() < deadline, f"no recovery: {result.answers}"
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            saver.join(timeout=30)
    return result


def item_ids(live: LiveServer, key: str) -> tuple[list[str], list[str]]:
    """The items the devices storm, and the action items."""
    body = httpx.get(live.url + "/api/v1/items", headers={"Authorization": f"Bearer {key}"},
                     timeout=10).json()
    ids = sorted(i["id"] for i in body["items"])
    return ids[:ITEMS], ids[ITEMS:]


def lost_actions(live: LiveServer, key: str, actions: list[str], result: Storm) -> dict[str, object]:
    """How the acknowledged progress actions differ from the store: marks played missing (or counted
    twice: negative), the hidden flag, the rows the reset should have removed."""
    others = result.others
    marked, rewritten = actions
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        mark = client.get(f"/api/v1/playback/progress/{marked}").json()
        rows = client.get(f"/api/v1/playback/progress/{rewritten}").json()
    devices = sorted(d["device_id"] for d in rows.get("devices", []))
    return {"played": others.played - int(mark.get("completed_count", 0)),
            "hidden": int(mark.get("hidden") != others.hidden),
            "reset": [d for d in devices if d != others.rewritten]}


NONE_LOST_ACTIONS = {"played": 0, "hidden": 0, "reset": []}


def lost(live: LiveServer, key: str, result: Storm) -> list[str]:
    """The acknowledged updates the store no longer has: a device row older than its last ack."""
    missing = []
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        for item in {i for i, _ in result.acked}:
            body = client.get(f"/api/v1/playback/progress/{item}").json()
            rows = {d["device_id"]: (d["event_ts"], d["position_ms"]) for d in body["devices"]}
            for (acked_item, device_id), ack in result.acked.items():
                if acked_item == item and rows.get(device_id, (0, 0)) < ack:
                    missing.append(f"{item}/{device_id}: acked {ack}, store has {rows.get(device_id)}")
    return missing


def user_id(live: LiveServer, key: str) -> str:
    me = httpx.get(live.url + "/api/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return str(me.json()["id"])


NONE_LOST = {"stars": 0, "playlists": 0, "queue": 0, "scrobbles": 0}


def lost_others(redis_url: str, user: str, result: Storm) -> dict[str, int]:
    """Per store, how many acknowledged writes the server no longer shows (read straight from it)."""
    import redis

    others = result.others
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stars = client.hgetall(f"rv:{{{user}}}:stars")
        playlists = client.hgetall(f"rv:{{{user}}}:playlists")
        queue = client.hgetall(f"rv:{{{user}}}:queue")
        scrobbles = [client.exists(f"rv:{{{user}}}:scrobble:{s}") for s in others.scrobbles]
    finally:
        client.close()
    stored_queue = (int(queue["version"]), orjson.loads(queue["data"])["items"]) if queue else None
    return {
        "stars": sum(1 for item, starred in others.starred.items() if (item in stars) != starred),
        "playlists": sum(1 for p in others.playlists if p not in playlists),
        "queue": int(others.queue is not None and stored_queue != (others.queue[0], others.queue[1])),
        "scrobbles": sum(1 for found in scrobbles if not found),
    }


def test_kill_9_of_a_snapshot_only_store_loses_no_acknowledged_update(
        tmp_path: Path, snapshot_redis: RedisServer) -> None:
    server, key = serve(tmp_path, snapshot_redis.url)
    with server as live:
        health = httpx.get(live.url + "/healthz", timeout=10).json()
        assert health["store"]["durability"]["level"] == "journal"  # appendonly no, with the journal
        items, actions = item_ids(live, key)
        result = asyncio.run(storm(live, key, snapshot_redis, items, actions))
        assert result.answers.get(503, 0) > 0  # the crash was seen
        assert lost(live, key, result) == []
        assert lost_actions(live, key, actions, result) == NONE_LOST_ACTIONS, result.others
        # The other stores' journals are replayed by their watchers, which look every second.
        deadline = time.monotonic() + 10
        while (others := lost_others(snapshot_redis.url, user_id(live, key), result)) != NONE_LOST:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"journal: {len(result.acked)} device rows, {result.others.rounds} rounds of other writes "
              f"({result.others.played} marks played); lost: progress 0, actions "
              f"{lost_actions(live, key, actions, result)}, {others}")
        assert others == NONE_LOST, others
        assert list((tmp_path / "data" / "progress-journal").glob("*.log"))
        for store in ("marks", "playlists", "queue", "records"):
            assert list((tmp_path / "data" / f"{store}-journal").glob("*.log"))


def test_without_the_journal_the_same_crash_loses_acknowledged_updates(
        tmp_path: Path, snapshot_redis: RedisServer) -> None:
    """The hole the journal closes (and proof that the test above can see it)."""
    server, key = serve(tmp_path, snapshot_redis.url, progress_journal=False, store_durability="accept_loss")
    with server as live:
        items, actions = item_ids(live, key)
        result = asyncio.run(storm(live, key, snapshot_redis, items, actions))
        missing = lost(live, key, result)
        time.sleep(2.5)  # as long as the journal's watchers would have taken (there are none)
        others = lost_others(snapshot_redis.url, user_id(live, key), result)
        actions_lost = lost_actions(live, key, actions, result)
        print(f"no journal: {result.others.rounds} rounds of other writes ({result.others.played} marks "
              f"played); lost: progress {len(missing)} device rows, actions {actions_lost}, {others}")
        assert missing != []
        # Three rounds at least after the last snapshot: their marks played are lost.
        assert actions_lost["played"] >= 3, actions_lost
        # Three rounds at least came after the last snapshot: every store lost some.
        assert others["playlists"] >= 3 and others["scrobbles"] >= 3 and others["queue"] == 1, others


def test_a_server_that_fsyncs_every_write_is_not_journaled_twice(tmp_path: Path) -> None:
    """With ``appendonly yes`` + ``appendfsync always`` (the fixtures' redis) the server's own fsync
    already covers an acknowledged write: the journals stay empty, the writes are stored."""
    with running_redis(tmp_path / "redis") as redis:
        server, key = serve(tmp_path, redis.url)
        with server as live:
            health = httpx.get(live.url + "/healthz", timeout=10).json()
            assert health["store"]["durability"]["level"] == "fsync_always"
            item = item_ids(live, key)[0][0]
            put = httpx.put(f"{live.url}/api/v1/playback/progress/{item}", timeout=10,
                            headers={"Authorization": f"Bearer {key}"},
                            json={"position_seconds": 42, "duration_seconds": 600, "device_id": "phone"})
            assert put.status_code == 200, put.text
            got = httpx.get(f"{live.url}/api/v1/playback/progress/{item}", timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).json()
            assert got["position_seconds"] == 42
            queued = httpx.put(f"{live.url}/api/v1/queue", timeout=10,
                               headers={"Authorization": f"Bearer {key}"},
                               json={"items": [item], "version": 0, "device_id": "phone"})
            assert queued.status_code == 200, queued.text
        for store in ("progress", "queue"):
            logs = list((tmp_path / "data" / f"{store}-journal").glob("*.log"))
            assert logs and sum(p.stat().st_size for p in logs) == 0, store
