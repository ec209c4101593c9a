"""The RecordStore contract (revenge/playback/records.py), run against every backend.

"sqlite" is the embedded store on a temp file; "redis" is the Redis store against a real redis-server
started on a free port by tests/redisfix.py, with the key guard on (a script touching a key it did not
declare in KEYS fails, as on Dragonfly). The central checks: dedup and merge follow
``scrobbles.add_to``, and the stats equal ``scrobbles.day_totals`` over what was recorded.
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from revenge.config import load_settings
from revenge.errors import StoreUnavailable
from revenge.library.model import ITEM_TYPES, ItemType
from revenge.playback import records_redis, scrobbles
from revenge.playback.bookmarks import Bookmark, new_bookmark_id, ordered
from revenge.playback.journaled import JournaledRecordStore
from revenge.playback.records import RecordStore, open_record_store
from revenge.playback.records_redis import RedisRecordStore
from revenge.playback.records_sqlite import SqliteRecordStore
from revenge.playback.scrobbles import DAY_MS, SERVICES, Delivery, Mark, Scrobble
from revenge.redis_scripts import LuaScript
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)

T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS  # a UTC midnight
DAY0 = T0 // DAY_MS
ITEMS = [c * 16 for c in "abcdefgh"]


@dataclasses.dataclass
class Backend:
    name: str
    store: RecordStore
    server: RedisServer | None
    path: Path | None


@pytest.fixture(params=["sqlite", "redis", "journaled"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param != "sqlite":
        server: RedisServer = request.getfixturevalue("redis_server")
        store: RecordStore = RedisRecordStore(server.url, 2.0, key_guard=True)
        if request.param == "journaled":
            store = JournaledRecordStore(store, tmp_path, 2.0)  # type: ignore[arg-type]
        chosen = Backend("redis", store, server, None)
    else:
        store = SqliteRecordStore(tmp_path / "records.db", busy_timeout_ms=200)
        chosen = Backend("sqlite", store, None, tmp_path / "records.db")
    await store.open()
    try:
        yield chosen
    finally:
        await store.close()


def listen(started_at: int, listened_ms: int = 60_000, *, user: str = "1", item: str = ITEMS[0],
           item_type: ItemType = "track", device: str = "phone") -> Scrobble:
    return Scrobble(user_id=user, item_id=item, item_type=item_type, started_at=started_at,
                    listened_ms=listened_ms, device_id=device, source="client", recorded_at=started_at + 500)


def test_the_factory_follows_settings_store(tmp_path: Path) -> None:
    assert isinstance(open_record_store(load_settings(None, env={}, data_dir=tmp_path)), SqliteRecordStore)
    remote = load_settings(None, env={}, data_dir=tmp_path, store="redis://127.0.0.1:1/0")
    assert isinstance(open_record_store(remote), JournaledRecordStore)
    unjournaled = load_settings(None, env={}, data_dir=tmp_path, store="redis://127.0.0.1:1/0",
                                progress_journal=False)
    assert isinstance(open_record_store(unjournaled), RedisRecordStore)


async def test_ping_and_empty_calls(backend: Backend) -> None:
    store = backend.store
    await store.ping()
    assert await store.add_scrobbles([]) == []
    for service in SERVICES:
        assert await store.outbox("1", service, 10) == []
        assert await store.mark("1", service, [], T0) == 0
        assert await store.outbox_size("1", service) == 0
    assert await store.listening_totals("1", DAY0, DAY0 + 365) == []
    assert await store.bookmarks("1", ITEMS[0]) == []
    assert await store.get_scrobble("1", f"{ITEMS[0]}-{T0}") is None


async def test_a_listen_is_recorded_once_and_the_longest_report_wins(backend: Backend) -> None:
    store = backend.store
    first = listen(T0, 30_000, device="phone")
    (created,) = await store.add_scrobbles([first])
    assert created.created and created.scrobble == first
    (shorter,) = await store.add_scrobbles([listen(T0, 10_000, device="laptop")])
    assert not shorter.created and shorter.scrobble == first
    (longer,) = await store.add_scrobbles([dataclasses.replace(listen(T0, 90_000, device="car"),
                                                               source="progress")])
    assert not longer.created and longer.scrobble == dataclasses.replace(first, listened_ms=90_000)
    assert await store.get_scrobble("1", first.id) == longer.scrobble
    totals = await store.listening_totals("1", DAY0, DAY0)
    assert [(t.item_type, t.listened_ms, t.listens) for t in totals] == [("track", 90_000, 1)]


async def test_repeats_within_one_call_and_other_users_and_items(backend: Backend) -> None:
    store = backend.store
    results = await store.add_scrobbles([
        listen(T0, 1000), listen(T0, 5000), listen(T0, 2000),
        listen(T0, 1000, user="2"),  # another user's listen with the same key is theirs
        listen(T0, 1000, item=ITEMS[1]),  # another item at the same time is another listen
        listen(T0 + 1, 1000),  # another start time is another listen
    ])
    assert [r.created for r in results] == [True, False, False, True, True, True]
    assert [r.scrobble.listened_ms for r in results] == [1000, 5000, 5000, 1000, 1000, 1000]
    assert (await store.get_scrobble("2", listen(T0).id)) == listen(T0, 1000, user="2")
    assert await store.get_scrobble("3", listen(T0).id) is None
    for bad in ("nope", f"{ITEMS[0]}-", f"{ITEMS[0]}-x", "../x"):
        assert await store.get_scrobble("1", bad) is None


def sent(scrobble_id: str) -> Mark:
    return Mark(scrobble_id, "sent")


async def test_outbox_order_limit_and_marks_per_service(backend: Backend) -> None:
    store = backend.store
    records = [listen(T0 + 3000, item=ITEMS[2]), listen(T0 + 1000, item=ITEMS[1]),
               listen(T0 + 1000, item=ITEMS[0]), listen(T0 + 2000, item=ITEMS[3]),
               listen(T0 + 500, user="2"),
               listen(T0 + 100, item=ITEMS[4], item_type="episode"),  # not music: queued nowhere
               listen(T0 + 200, item=ITEMS[5], item_type="audiobook")]
    await store.add_scrobbles(records)
    queued = await store.outbox("1", "listenbrainz", 10)
    assert [s.id for s in queued] == [f"{ITEMS[0]}-{T0 + 1000}", f"{ITEMS[1]}-{T0 + 1000}",
                                      f"{ITEMS[3]}-{T0 + 2000}", f"{ITEMS[2]}-{T0 + 3000}"]
    assert all(s.deliveries == () and s.sent_at is None for s in queued)
    assert [s.id for s in await store.outbox("1", "listenbrainz", 2)] == [s.id for s in queued[:2]]
    assert [s.id for s in await store.outbox("1", "lastfm", 10)] == [s.id for s in queued]
    assert await store.outbox_size("1", "listenbrainz") == 4 and await store.outbox_size("2", "lastfm") == 1
    # Unknown, malformed, another user's and repeated ids are passed over.
    marks = [sent(queued[0].id), sent(queued[0].id), Mark(queued[2].id, "skipped", "too old " + "x" * 500),
             sent(f"{ITEMS[7]}-1"), sent("junk"), sent(listen(T0 + 500).id)]
    assert await store.mark("1", "listenbrainz", marks, T0 + 9000) == 2
    assert [s.id for s in await store.outbox("1", "listenbrainz", 10)] == [queued[1].id, queued[3].id]
    assert await store.outbox_size("1", "listenbrainz") == 2
    assert await store.mark("1", "listenbrainz", [Mark(queued[0].id, "skipped", "again")], T0 + 9999) == 0
    # The other service's queue is its own.
    assert [s.id for s in await store.outbox("1", "lastfm", 10)] == [s.id for s in queued]
    assert await store.mark("1", "lastfm", [Mark(queued[0].id, "skipped", "too old")], T0 + 7000) == 1
    first = await store.get_scrobble("1", queued[0].id)
    assert first is not None and first.deliveries == (Delivery("lastfm", "skipped", T0 + 7000, "too old"),
                                                      Delivery("listenbrainz", "sent", T0 + 9000))
    assert first.sent_at == T0 + 9000
    skipped = await store.get_scrobble("1", queued[2].id)
    assert skipped is not None and skipped.sent_at is None
    assert skipped.deliveries == (Delivery("listenbrainz", "skipped", T0 + 9000, "too old " + "x" * 192),)
    # A longer repeat of a delivered listen updates it but does not put it back in any outbox.
    (repeat,) = await store.add_scrobbles([dataclasses.replace(queued[0], listened_ms=120_000)])
    assert not repeat.created
    assert repeat.scrobble == dataclasses.replace(first, listened_ms=120_000)
    assert [s.id for s in await store.outbox("1", "listenbrainz", 10)] == [queued[1].id, queued[3].id]
    assert [s.id for s in await store.outbox("2", "listenbrainz", 10)] == [listen(T0 + 500, user="2").id]
    # A record listed from the outbox carries its other deliveries.
    (lastfm_head, *_) = await store.outbox("1", "lastfm", 10)
    assert lastfm_head.id == queued[1].id and lastfm_head.deliveries == ()
    (lb_head, *_) = await store.outbox("1", "listenbrainz", 10)
    assert lb_head.id == queued[1].id


async def test_stats_equal_the_pure_aggregation(backend: Backend) -> None:
    """Random listens (users, items, types, days, repeats with shorter and longer reports) recorded in
    batches: every day range gives what ``day_totals`` gives over the stored records."""
    store = backend.store
    rng = random.Random(7)
    pool = [listen(T0 + rng.randrange(-3 * DAY_MS, 12 * DAY_MS), rng.randrange(0, 3_600_000),
                   user=rng.choice("12"), item=rng.choice(ITEMS), item_type=rng.choice(ITEM_TYPES))
            for _ in range(120)]
    stream = pool + [dataclasses.replace(rng.choice(pool), listened_ms=rng.randrange(0, 4_000_000))
                     for _ in range(60)]
    rng.shuffle(stream)
    expected: dict[tuple[str, str, int], Scrobble] = {}
    for start in range(0, len(stream), 37):
        part = stream[start:start + 37]
        results = await store.add_scrobbles(part)
        for incoming, result in zip(part, results, strict=True):
            key = (incoming.user_id, incoming.item_id, incoming.started_at)
            want = scrobbles.add_to(expected.get(key), incoming)
            assert result == want
            expected[key] = want.scrobble
    for user in "12":
        mine = [s for (u, _, _), s in expected.items() if u == user]
        ranges = ((DAY0 - 3, DAY0 + 12), (DAY0, DAY0), (DAY0 + 2, DAY0 + 5), (DAY0 + 20, DAY0 + 30))
        for first, last in ranges:
            assert await store.listening_totals(user, first, last) == scrobbles.day_totals(mine, first, last)
        tracks = [s for s in mine if s.item_type == "track"]
        assert len(await store.outbox(user, "lastfm", 1000)) == len(tracks)
        assert await store.outbox_size(user, "listenbrainz") == len(tracks)


async def test_day_boundaries_are_utc_midnight(backend: Backend) -> None:
    store = backend.store
    await store.add_scrobbles([listen(T0 - 1, 1000), listen(T0, 2000), listen(T0 + DAY_MS - 1, 4000),
                               listen(T0 + DAY_MS, 8000)])
    totals = await store.listening_totals("1", DAY0 - 1, DAY0 + 1)
    got = [(t.day - DAY0, t.listened_ms, t.listens) for t in totals]
    assert got == [(-1, 1000, 1), (0, 6000, 2), (1, 8000, 1)]
    assert [t.day for t in await store.listening_totals("1", DAY0, DAY0)] == [DAY0]


def mark(item: str, position_ms: int, created: int, user: str = "1", note: str = "") -> Bookmark:
    return Bookmark(user, item, new_bookmark_id(), position_ms, note, created)


async def test_bookmarks_per_user_and_item_in_order(backend: Backend) -> None:
    store = backend.store
    marks = [mark(ITEMS[0], 50_000, T0 + 1, note="chapter 3 — the twist 🎧\nsecond line"),
             mark(ITEMS[0], 10_000, T0 + 2, note="x" * 1000), mark(ITEMS[0], 10_000, T0 + 1),
             mark(ITEMS[1], 0, T0), mark(ITEMS[0], 5, T0, user="2")]
    for m in marks:
        assert await store.add_bookmark(m, 500)
    assert await store.bookmarks("1", ITEMS[0]) == ordered(marks[:3])
    assert await store.bookmarks("1", ITEMS[1]) == [marks[3]]
    assert await store.bookmarks("2", ITEMS[0]) == [marks[4]]
    assert await store.bookmarks("2", ITEMS[1]) == []
    # Deleting needs the owner and the item.
    assert not await store.delete_bookmark("2", ITEMS[0], marks[0].id)
    assert not await store.delete_bookmark("1", ITEMS[1], marks[0].id)
    assert await store.delete_bookmark("1", ITEMS[0], marks[0].id)
    assert not await store.delete_bookmark("1", ITEMS[0], marks[0].id)
    assert await store.bookmarks("1", ITEMS[0]) == ordered(marks[1:3])


async def test_bookmark_cap_per_item(backend: Backend) -> None:
    store = backend.store
    for i in range(3):
        assert await store.add_bookmark(mark(ITEMS[0], i, T0), 3)
    assert not await store.add_bookmark(mark(ITEMS[0], 9, T0), 3)
    assert await store.add_bookmark(mark(ITEMS[1], 9, T0), 3)  # per item
    assert await store.add_bookmark(mark(ITEMS[0], 9, T0, user="2"), 3)  # per user
    assert len(await store.bookmarks("1", ITEMS[0])) == 3
    first = (await store.bookmarks("1", ITEMS[0]))[0]
    assert await store.delete_bookmark("1", ITEMS[0], first.id)
    assert await store.add_bookmark(mark(ITEMS[0], 9, T0), 3)


async def test_outage_raises_store_unavailable_and_nothing_is_acknowledged(backend: Backend) -> None:
    store = backend.store
    await store.add_scrobbles([listen(T0)])
    if backend.server is not None:
        backend.server.stop(hard=True)
    else:
        assert backend.path is not None
        other = sqlite3.connect(backend.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the store's busy timeout
    try:
        with pytest.raises(StoreUnavailable):
            await store.add_scrobbles([listen(T0 + 1)])
        with pytest.raises(StoreUnavailable):
            await store.add_bookmark(mark(ITEMS[0], 1, T0), 500)
        with pytest.raises(StoreUnavailable):
            await store.mark("1", "lastfm", [sent(listen(T0).id)], T0)
        if backend.server is not None:
            with pytest.raises(StoreUnavailable):
                await store.ping()
    finally:
        if backend.server is not None:
            backend.server.start()  # same port, the AOF replayed
        else:
            other.execute("ROLLBACK")
            other.close()
    # The store recovers by itself; what failed was not stored.
    assert [s.started_at for s in await store.outbox("1", "lastfm", 10)] == [T0]
    assert (await store.add_scrobbles([listen(T0 + 1)]))[0].created
    assert await store.bookmarks("1", ITEMS[0]) == []


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisRecordStore]:  # noqa: F811
    store = RedisRecordStore(redis_server.url, 2.0, key_guard=True)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_redis_keys_carry_the_user_hash_tag_and_survive_a_script_flush(
        redis_store: RedisRecordStore, redis_server: RedisServer) -> None:  # noqa: F811
    store = redis_store
    await store.add_scrobbles([listen(T0, user="u1"), listen(T0, user="u2", item_type="episode")])
    await store.add_bookmark(mark(ITEMS[0], 1, T0, user="u1"), 500)
    await store.add_scrobbles([listen(T0 + 1, user="u2")])
    await store.mark("u2", "lastfm", [sent(listen(T0 + 1, user="u2").id)], T0)
    raw = redis.Redis.from_url(redis_server.url)
    try:
        keys = sorted(k.decode() for k in raw.keys("*"))
        assert keys and all(k.startswith(("rv:{u1}:", "rv:{u2}:")) for k in keys), keys
        raw.script_flush()  # as after a restart: the next call meets NOSCRIPT and reloads
    finally:
        raw.close()
    (again,) = await store.add_scrobbles([listen(T0 + 5, user="u1")])
    assert again.created
    assert await store.add_bookmark(mark(ITEMS[0], 2, T0, user="u1"), 500)
    assert await store.mark("u1", "listenbrainz", [sent(listen(T0, user="u1").id)], T0) == 1


async def test_redis_key_guard_refuses_undeclared_keys(redis_store: RedisRecordStore) -> None:
    """The guard the contract runs under does bite: a script writing a key it did not declare fails (and
    is reported as an outage, never acknowledged), the same script writing its declared key works."""

    def probe(key: str) -> None:
        source = records_redis._KEY_GUARD + f"return redis.call('HSET', {key}, 'a', ARGV[1])"
        redis_store._redis.scripts["probe"] = LuaScript.of("probe", source)

    probe("KEYS[1]")
    assert await redis_store._redis.eval_pipeline([("probe", ("rv:{1}:declared",), ("1",))]) == [1]
    probe("'rv:{1}:undeclared'")
    with pytest.raises(StoreUnavailable, match="undeclared key"):
        await redis_store._redis.eval_pipeline([("probe", ("rv:{1}:declared",), ("1",))])


async def test_sqlite_records_of_the_single_outbox_schema_are_queued_for_each_service(tmp_path: Path) -> None:
    """A records.db written before per-service outboxes (user_version 0, a ``sent_at`` column that
    nothing ever set): opening it queues its tracks for every service, once."""
    path = tmp_path / "records.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE scrobble (user_id TEXT NOT NULL, item_id TEXT NOT NULL, started_at INTEGER NOT NULL,
          item_type TEXT NOT NULL, listened_ms INTEGER NOT NULL, device_id TEXT NOT NULL,
          source TEXT NOT NULL, recorded_at INTEGER NOT NULL, sent_at INTEGER,
          PRIMARY KEY (user_id, item_id, started_at)) WITHOUT ROWID;
        CREATE INDEX scrobble_outbox ON scrobble (user_id, started_at, item_id) WHERE sent_at IS NULL;""")
    for s in (listen(T0), listen(T0 + 1, item=ITEMS[1], item_type="episode")):
        old.execute("INSERT INTO scrobble VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (s.user_id, s.item_id, s.started_at, s.item_type, s.listened_ms, s.device_id, s.source,
                     s.recorded_at))
    old.commit()
    old.close()
    store = SqliteRecordStore(path)
    await store.open()
    try:
        for service in SERVICES:
            assert [s.id for s in await store.outbox("1", service, 10)] == [listen(T0).id]
        assert await store.mark("1", "lastfm", [sent(listen(T0).id)], T0) == 1
        assert (await store.add_scrobbles([listen(T0 + 5)]))[0].created  # the old table takes new rows
    finally:
        await store.close()
    store = SqliteRecordStore(path)
    await store.open()  # migrated already: the sent record stays out
    try:
        assert [s.started_at for s in await store.outbox("1", "lastfm", 10)] == [T0 + 5]
        assert [s.started_at for s in await store.outbox("1", "listenbrainz", 10)] == [T0, T0 + 5]
    finally:
        await store.close()


async def test_redis_records_of_the_single_outbox_are_queued_for_each_service(
        redis_store: RedisRecordStore, redis_server: RedisServer) -> None:  # noqa: F811
    """Records written to Redis before per-service outboxes (one ``scrobble-outbox`` zset): the first
    read of the user's outbox queues its tracks for every service and drops the old key, once."""
    track, episode = listen(T0, user="7"), listen(T0 + 1, user="7", item=ITEMS[1], item_type="episode")
    raw = redis.Redis.from_url(redis_server.url)
    try:
        for s in (track, episode):
            raw.hset(records_redis.scrobble_key("7", s.id), mapping={
                "user_id": s.user_id, "item_id": s.item_id, "item_type": s.item_type,
                "started_at": s.started_at, "listened_ms": s.listened_ms, "device_id": s.device_id,
                "source": s.source, "recorded_at": s.recorded_at})
            raw.zadd(records_redis.old_outbox_key("7"), {s.id: s.started_at})
        for service in SERVICES:
            assert [s.id for s in await redis_store.outbox("7", service, 10)] == [track.id]
        assert not raw.exists(records_redis.old_outbox_key("7"))
        assert await redis_store.mark("7", "lastfm", [sent(track.id)], T0) == 1
        assert await redis_store.outbox("7", "lastfm", 10) == []  # not queued again
        assert [s.id for s in await redis_store.outbox("7", "listenbrainz", 10)] == [track.id]
    finally:
        raw.close()
