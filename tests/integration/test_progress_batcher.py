"""Group commit against the real SQLite store; faults provoked for real by another connection holding
SQLite's write lock. One fake store only for what cannot be provoked: a store that raises a bug."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from revenge.errors import StoreUnavailable
from revenge.progress.batcher import BatcherClosed, BatcherOverloaded, ProgressBatcher
from revenge.progress.model import DEFAULT_POLICIES, ProgressState, ProgressUpdate
from revenge.progress.service import ProgressService
from revenge.progress.store_sqlite import SqliteStore
from tests.waits import until

T0 = 1_700_000_000_000
DURATION = 3_600_000


def upd(i: int, item: str = "a" * 16, ts: int | None = None, user: str = "1") -> ProgressUpdate:
    event_ts = T0 + i if ts is None else ts
    return ProgressUpdate(user_id=user, item_id=item, item_type="episode", duration_ms=DURATION,
                          position_ms=min(i * 1000, DURATION), event="progress", device_id="phone",
                          event_ts_ms=event_ts, received_ms=event_ts)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    # A short busy timeout so a held write lock turns into StoreUnavailable quickly.
    s = SqliteStore(tmp_path / "progress.db", busy_timeout_ms=100)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a backup tool or a stuck writer would."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_concurrent_updates_are_grouped_and_all_applied(store: SqliteStore) -> None:
    batcher = ProgressBatcher(store, batch_max=64, window_ms=5, queue_max=10_000)
    batcher.start()
    try:
        items = [f"{c * 16}" for c in "abcdefgh"]
        updates = [upd(i, items[i % 8]) for i in range(1, 801)]
        states = await asyncio.gather(*(batcher.submit(u) for u in updates))
    finally:
        await batcher.close()
    assert [s.position_ms for s in states] == [u.position_ms for u in updates]
    assert batcher.stats.updates == 800
    assert batcher.stats.batches < 800 / 8  # grouped, not one commit per update
    assert batcher.stats.largest_batch <= 64
    for item in items:
        stored = await store.get("1", item)
        assert stored is not None and stored.version == 100


async def test_same_key_applied_in_arrival_order_across_batches(store: SqliteStore) -> None:
    # Equal event times: the later arrival wins, so the final state shows the arrival order was kept.
    batcher = ProgressBatcher(store, batch_max=7, window_ms=1, queue_max=1000)
    batcher.start()
    try:
        updates = [upd(i, ts=T0) for i in range(100)]
        states = await asyncio.gather(*(batcher.submit(u) for u in updates))
    finally:
        await batcher.close()
    assert [s.version for s in states] == list(range(1, 101))
    final = await store.get("1", "a" * 16)
    assert final is not None and final.position_ms == 99_000


async def test_updates_within_the_window_share_one_batch(store: SqliteStore) -> None:
    batcher = ProgressBatcher(store, batch_max=512, window_ms=500, queue_max=1000)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(upd(1)))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(batcher.submit(upd(2, "b" * 16)))
        await asyncio.gather(first, second)
    finally:
        await batcher.close()
    assert batcher.stats.batches == 1 and batcher.stats.largest_batch == 2


async def test_a_full_batch_does_not_wait_for_the_window(store: SqliteStore) -> None:
    # A window far longer than the test's own timeout: only the batch_max trigger can flush it in time.
    batcher = ProgressBatcher(store, batch_max=4, window_ms=60_000, queue_max=100)
    batcher.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(batcher.submit(upd(i)) for i in range(4))), timeout=30)
    finally:
        await batcher.close()
    assert batcher.stats.batches == 1


async def test_store_outage_fails_the_batch_with_unavailable_then_recovers(
    store: SqliteStore, tmp_path: Path
) -> None:
    batcher = ProgressBatcher(store, batch_max=16, window_ms=1, queue_max=100)
    batcher.start()
    try:
        with write_lock(tmp_path / "progress.db"):
            results = await asyncio.gather(*(batcher.submit(upd(i)) for i in range(1, 6)),
                                           return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results)
        assert batcher.stats.failed_batches >= 1
        assert await store.get("1", "a" * 16) is None  # nothing of the failed batch was applied
        state = await batcher.submit(upd(7))
        assert state.position_ms == 7000 and state.version == 1
    finally:
        await batcher.close()


async def test_queue_bound_refuses_instead_of_growing(tmp_path: Path) -> None:
    # A long busy timeout: the flusher stays stuck on the lock for the whole test, then succeeds.
    store = SqliteStore(tmp_path / "slow.db", busy_timeout_ms=30_000)
    await store.open()
    batcher = ProgressBatcher(store, batch_max=2, window_ms=0, queue_max=4)
    batcher.start()
    try:
        with write_lock(tmp_path / "slow.db"):
            in_flight = batcher.enqueue([upd(1), upd(2)])  # queued now, not when a task gets to run
            await until(lambda: batcher.queued == 0, "the flusher to take them (it then waits on the lock)")
            queued = [asyncio.ensure_future(batcher.submit(upd(i))) for i in range(3, 7)]
            await asyncio.sleep(0)
            assert batcher.queued == 4
            with pytest.raises(BatcherOverloaded):
                await batcher.submit(upd(99))
            with pytest.raises(BatcherOverloaded):
                batcher.enqueue([upd(100)])
            assert batcher.stats.rejected == 2
        # Lock released: the stuck batch goes through, then everything queued behind it.
        first = await asyncio.gather(*in_flight)
        later = await asyncio.gather(*queued)
        assert [s.position_ms for s in first + later] == [1000, 2000, 3000, 4000, 5000, 6000]
    finally:
        await batcher.close()
        await store.close()


async def test_close_applies_what_is_queued_then_refuses(store: SqliteStore) -> None:
    batcher = ProgressBatcher(store, batch_max=8, window_ms=200, queue_max=100)
    batcher.start()
    futures = batcher.enqueue([upd(i) for i in range(1, 21)])
    await batcher.close()
    assert [f.result().position_ms for f in futures] == [i * 1000 for i in range(1, 21)]
    with pytest.raises(BatcherClosed):
        await batcher.submit(upd(30))


class ExplodingOnce:
    """A store with a bug in its first batch (a fault no real store can be made to have on demand)."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.calls = 0

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("bug in the store")
        return await self.inner.apply_batch(updates)


async def test_flusher_survives_a_store_bug(store: SqliteStore) -> None:
    batcher = ProgressBatcher(ExplodingOnce(store), batch_max=8, window_ms=0, queue_max=100)  # type: ignore[arg-type]
    batcher.start()
    try:
        with pytest.raises(RuntimeError):
            await batcher.submit(upd(1))
        state = await batcher.submit(upd(2))
        assert state.position_ms == 2000
    finally:
        await batcher.close()


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        ProgressBatcher(None, batch_max=10, window_ms=1, queue_max=5)  # type: ignore[arg-type]


async def test_service_replays_more_than_the_queue_bound_in_parts(store: SqliteStore) -> None:
    batcher = ProgressBatcher(store, batch_max=2, window_ms=0, queue_max=4)
    batcher.start()
    service = ProgressService(store, batcher, DEFAULT_POLICIES)
    try:
        results = await service.update_many([upd(i) for i in range(1, 11)])
    finally:
        await batcher.close()
    assert all(isinstance(r, ProgressState) for r in results)
    assert [r.position_ms for r in results] == [i * 1000 for i in range(1, 11)]  # type: ignore[union-attr]
    assert batcher.stats.largest_batch == 2
