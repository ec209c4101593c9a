"""The journals of the marks, playlists, queue and records stores (``revenge.playback.journaled``) on a
real snapshot-only redis-server: what is journaled is what took effect, and a replay is safe. The journal
a restart replays is a suffix of the writes (trimmed behind a snapshot) over a snapshot that holds a
prefix of them at least as long: whatever the two points, the store ends as it was before the crash, and
a replay over the whole state (every entry applied already) changes nothing."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from revenge.playback import playlists as pl_rules
from revenge.playback import queue as q
from revenge.playback.bookmarks import Bookmark
from revenge.playback.journaled import (
    JournaledMarkStore,
    JournaledPlaylistStore,
    JournaledQueueStore,
    JournaledRecordStore,
)
from revenge.playback.marks import TooManyMarks
from revenge.playback.marks_redis import RedisMarkStore
from revenge.playback.playlists_redis import PUBLIC_KEY, RedisPlaylistStore
from revenge.playback.queue_redis import RedisQueueStore
from revenge.playback.records_redis import RedisRecordStore
from revenge.playback.scrobbles import Mark, Scrobble
from tests.redisfix import RedisServer

A, B, C = "a" * 16, "b" * 16, "c" * 16
T0 = 1_700_000_000_000


async def state(url: str) -> dict[str, Any]:
    """Every key the stores wrote, with its content."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        found: dict[str, Any] = {}
        async for key in client.scan_iter(match="rv:*"):
            kind = await client.type(key)
            if kind == "hash":
                found[key] = await client.hgetall(key)
            elif kind == "zset":
                found[key] = await client.zrange(key, 0, -1, withscores=True)
            else:
                raise AssertionError(f"{key}: {kind}")
        return found
    finally:
        await client.aclose()


async def flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def write_marks(store: JournaledMarkStore) -> None:
    await store.star("u1", [A, B], T0)
    await store.unstar("u1", [A], T0 + 1)
    await store.set_rating("u1", B, 4, T0 + 2)
    await store.star("u1", [A], T0 + 5)  # starred again, later
    await store.set_rating("u1", B, 0, T0 + 6)
    await store.set_rating("u1", C, 2, T0 + 7)
    await store.unstar("u1", [C], T0 + 8)


async def write_playlists(store: JournaledPlaylistStore) -> None:
    first = pl_rules.create("Road", [A, B], T0)
    second = pl_rules.create("Gone", [C], T0 + 1)
    assert await store.add("u1", first) and await store.add("u1", second)
    renamed = pl_rules.update(first, T0 + 2, name="Trip", public=True, add=[C])
    assert await store.put("u1", renamed)
    assert await store.delete("u1", second.id)
    assert not await store.put("u1", pl_rules.update(second, T0 + 3, name="Back"))  # deleted: refused
    assert await store.put("u1", pl_rules.update(renamed, T0 + 4, public=False, remove=[0]))


async def write_queue(store: JournaledQueueStore) -> None:
    queue = q.EMPTY
    for n, ops in enumerate([[q.Replace((A, B, C))], [q.Next()], [q.Append((A,))], [q.Shuffle(3)]]):
        changed = q.change(queue, ops, "phone", T0 + n)
        assert await store.put("u1", changed, queue.version) is None
        queue = changed
    stale = q.change(q.EMPTY, [q.Replace((C,))], "car", T0 + 9)
    assert await store.put("u1", stale, 0) is not None  # another version: refused, not journaled


async def write_records(store: JournaledRecordStore) -> None:
    def listen(item: str, started: int, listened: int) -> Scrobble:
        return Scrobble("u1", item, "track", started, listened, "phone", "client", started + 500)

    await store.add_scrobbles([listen(A, T0, 40_000), listen(B, T0 + 60_000, 30_000)])
    await store.add_scrobbles([listen(A, T0, 90_000)])  # a repeat that listened longer
    await store.mark("u1", "listenbrainz", [Mark(listen(A, T0, 0).id, "sent")], T0 + 100)
    await store.add_bookmark(Bookmark("u1", C, "bm-1", 5_000, "here", T0), 10)
    await store.add_bookmark(Bookmark("u1", C, "bm-2", 9_000, "there", T0 + 1), 10)
    await store.delete_bookmark("u1", C, "bm-1")


CASES = {
    "marks": (lambda url, d: JournaledMarkStore(RedisMarkStore(url, 2.0, key_guard=True), d, 2.0),
              write_marks),
    "playlists": (lambda url, d: JournaledPlaylistStore(RedisPlaylistStore(url, 2.0, key_guard=True), d, 2.0),
                  write_playlists),
    "queue": (lambda url, d: JournaledQueueStore(RedisQueueStore(url, 2.0, key_guard=True), d, 2.0),
              write_queue),
    "records": (lambda url, d: JournaledRecordStore(RedisRecordStore(url, 2.0, key_guard=True), d, 2.0),
                write_records),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_any_snapshot_plus_the_journal_after_it_gives_the_state_before_the_crash(
        name: str, snapshot_redis: RedisServer, tmp_path: Path) -> None:
    make, write = CASES[name]
    store: Any = make(snapshot_redis.url, tmp_path / "data")
    await store.open()
    try:
        await write(store)
        final = await state(snapshot_redis.url)
        entries, _ = store.journal.files.entries()
        assert entries, "nothing journaled"
        assert not [e for e in entries if e[0] == "queue" and q.decode(e[2]).changed_by == "car"]  # refused
        for start in range(len(entries) + 1):  # over the whole state: every entry applied already
            await store.replay(entries[start:])
            assert await state(snapshot_redis.url) == final, (name, start)
        for saved in range(len(entries) + 1):
            for start in range(saved + 1):
                await flush(snapshot_redis.url)
                await store.replay(entries[:saved])  # the snapshot: the first ``saved`` writes
                await store.replay(entries[start:])  # the journal left after trimming
                assert await state(snapshot_redis.url) == final, (name, saved, start)
    finally:
        await store.close()


async def test_a_refused_write_is_not_journaled(snapshot_redis: RedisServer, tmp_path: Path) -> None:
    """A star refused at the cap never comes back with a replay, even once there is room for it."""
    from revenge.playback import marks

    store = JournaledMarkStore(RedisMarkStore(snapshot_redis.url, 2.0, key_guard=True), tmp_path, 2.0)
    await store.open()
    try:
        keys = [f"{n:016x}" for n in range(marks.MAX_MARKS)]
        for start in range(0, len(keys), 500):
            await store.star("u1", keys[start:start + 500], T0)
        with pytest.raises(TooManyMarks):
            await store.star("u1", [A], T0 + 1)
        await store.unstar("u1", keys[:1])
        entries, _ = store.journal.files.entries()
        await store.replay(entries)
        assert A not in await store.starred("u1")
    finally:
        await store.close()


async def test_the_public_index_follows_a_replayed_playlist(snapshot_redis: RedisServer,
                                                            tmp_path: Path) -> None:
    store = JournaledPlaylistStore(RedisPlaylistStore(snapshot_redis.url, 2.0, key_guard=True), tmp_path, 2.0)
    await store.open()
    try:
        shared = pl_rules.update(pl_rules.create("Shared", [A], T0), T0 + 1, public=True)
        assert await store.add("u1", shared)
        entries, _ = store.journal.files.entries()
        await flush(snapshot_redis.url)
        await store.replay(entries)
        assert [p.id for _, p in await store.public()] == [shared.id]
        client = aioredis.Redis.from_url(snapshot_redis.url, decode_responses=True)
        try:
            assert await client.hget(PUBLIC_KEY, shared.id) == "u1"
        finally:
            await client.aclose()
    finally:
        await store.close()


# --- two instances' marks of the same keys (the newest change wins) -----------------------------------

def marks_history(seed: int) -> list[tuple[int, str, str, int]]:
    """(instance, star|unstar|rate, key, value) in the order made, one millisecond apart: the two
    instances take turns at random on a few keys."""
    rng = random.Random(seed)
    return [(rng.randrange(2), rng.choice(("star", "star", "unstar", "rate")), rng.choice((A, B, C)),
             rng.randrange(6)) for _ in range(rng.randrange(4, 24))]


async def make(store: JournaledMarkStore, kind: str, key: str, value: int, at: int) -> None:
    if kind == "star":
        await store.star("u1", [key], at)
    elif kind == "unstar":
        await store.unstar("u1", [key], at)
    else:
        await store.set_rating("u1", key, value, at)


@pytest.mark.parametrize("seed", range(12))
async def test_two_instances_marks_replayed_in_either_order_end_as_made(
        seed: int, snapshot_redis: RedisServer, tmp_path: Path) -> None:
    """Two instances (two journals) star, unstar and rate the same keys after the last snapshot; the
    server restarts from that snapshot and the journals are replayed one after the other, in either
    order: the stars, their times and the ratings are those the writes left (the newest change wins)."""
    stores = [JournaledMarkStore(RedisMarkStore(snapshot_redis.url, 2.0, key_guard=True), tmp_path / f"i{n}",
                                 2.0, check_interval=3600) for n in range(2)]  # the replays are the test's
    history = marks_history(seed)
    cut = len(history) // 3
    for store in stores:
        await store.open()
    try:
        for n, (instance, kind, key, value) in enumerate(history[:cut]):
            await make(stores[instance], kind, key, value, T0 + n)
        assert snapshot_redis.save()
        for n, (instance, kind, key, value) in enumerate(history[cut:], start=cut):
            await make(stores[instance], kind, key, value, T0 + n)
        made = (await stores[0].starred("u1"), await stores[0].ratings("u1"))
        journals = [store.journal.files.entries()[0] for store in stores]
        for order in ((0, 1), (1, 0)):
            snapshot_redis.stop(hard=True)  # a crash: back to the snapshot
            snapshot_redis.start()
            for n in order:
                await stores[n].replay(journals[n])
            assert (await stores[0].starred("u1"), await stores[0].ratings("u1")) == made, (order, history)
    finally:
        for store in stores:
            await store.close()


async def test_a_star_replayed_after_a_newer_unstar_stays_out(snapshot_redis: RedisServer,
                                                              tmp_path: Path) -> None:
    """What the change times are for: one instance stars, another unstars later; replayed in the order
    that puts the star last, the key stays unstarred (it came back starred before). And a star, another
    instance's unstar, a star again: the star's time is the second star's, either way."""
    stores = [JournaledMarkStore(RedisMarkStore(snapshot_redis.url, 2.0, key_guard=True), tmp_path / f"i{n}",
                                 2.0, check_interval=3600) for n in range(2)]
    for store in stores:
        await store.open()
    try:
        await stores[0].star("u1", [A, B], T0)
        await stores[1].unstar("u1", [A, B], T0 + 1)
        await stores[0].star("u1", [B], T0 + 2)
        made = await stores[0].starred("u1")
        assert made == {B: T0 + 2}
        journals = [store.journal.files.entries()[0] for store in stores]
        for order in ((1, 0), (0, 1)):
            await flush(snapshot_redis.url)
            for n in order:
                await stores[n].replay(journals[n])
            assert await stores[0].starred("u1") == made, order
    finally:
        for store in stores:
            await store.close()
