"""The embedded progress store's states cache never answers with what the file does not hold: a write by
another connection, a rolled-back batch and the user actions are all seen by the next batch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from revenge.errors import StoreUnavailable
from revenge.progress.model import DEFAULT_POLICIES, ProgressUpdate
from revenge.progress.store_sqlite import SqliteStore

pytestmark = pytest.mark.anyio

MIN = 60_000
T0 = 1_700_000_000_000


def update(n: int, item_id: str = "a" * 16, item_type: str = "episode") -> ProgressUpdate:
    return ProgressUpdate(user_id="u", item_id=item_id, item_type=item_type,  # type: ignore[arg-type]
                          duration_ms=60 * MIN, position_ms=n * MIN, event="progress", device_id="phone",
                          event_ts_ms=T0 + n, received_ms=T0 + n)


async def test_a_commit_by_another_connection_is_seen_by_the_next_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "progress.db")
    await store.open()
    try:
        (first,) = await store.apply_batch([update(1)])
        assert first.play_count == 0
        db = sqlite3.connect(tmp_path / "progress.db")  # the sqlite3 CLI, say
        with db:
            db.execute("UPDATE progress SET play_count = 7")
        db.close()
        (second,) = await store.apply_batch([update(2)])
        assert (second.play_count, second.version) == (7, 2)
    finally:
        await store.close()


async def test_a_rolled_back_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    # No policy for tracks: the batch's second update fails (a bug's way to fail), after its first one
    # was applied in the transaction; the rollback must take that one back from memory too.
    store = SqliteStore(tmp_path / "progress.db", policies={"episode": DEFAULT_POLICIES["episode"]})
    await store.open()
    try:
        await store.apply_batch([update(1)])
        with pytest.raises(KeyError):
            await store.apply_batch([update(2), update(3, "b" * 16, "track")])
        stored = await store.get("u", "a" * 16)
        assert stored is not None and (stored.version, stored.position_ms) == (1, MIN)
        (after,) = await store.apply_batch([update(4)])
        assert after.version == 2
    finally:
        await store.close()


async def test_user_actions_are_seen_by_the_next_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "progress.db")
    await store.open()
    try:
        await store.apply_batch([update(1)])
        await store.set_hidden("u", "a" * 16, "episode", 60 * MIN, True, T0 + 10)
        (hidden,) = await store.apply_batch([update(20)])  # a progress event keeps it hidden
        assert hidden.hidden and hidden.version == 3
        assert await store.reset("u", "a" * 16)
        (fresh,) = await store.apply_batch([update(30)])
        assert (fresh.version, fresh.hidden) == (1, False)
    finally:
        await store.close()


async def test_a_failed_store_call_is_unavailable_not_cached(tmp_path: Path) -> None:
    # Another connection holds the write lock past the busy timeout: the batch fails (503) and the next
    # one, the lock gone, still reads the row from the file.
    store = SqliteStore(tmp_path / "progress.db", busy_timeout_ms=50)
    await store.open()
    try:
        await store.apply_batch([update(1)])
        db = sqlite3.connect(tmp_path / "progress.db", isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE progress SET play_count = 5")
        with pytest.raises(StoreUnavailable):
            await store.apply_batch([update(2)])
        db.execute("COMMIT")
        db.close()
        (after,) = await store.apply_batch([update(3)])
        assert (after.play_count, after.version) == (5, 2)
    finally:
        await store.close()
