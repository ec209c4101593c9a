"""The SQLite plumbing both embedded stores share, on real files: transactions commit or roll back as a
whole, failures are StoreUnavailable naming the store, the pragmas that make an acknowledgement durable
are set, and a closed (or never opened) store refuses work."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.errors import StoreUnavailable
from revenge.sqlite_thread import SqliteThread

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"


@pytest.fixture
async def thread(tmp_path: Path) -> AsyncIterator[SqliteThread]:
    sqlite = SqliteThread(tmp_path / "sub" / "t.db", "things", busy_timeout_ms=100)
    await sqlite.open(SCHEMA)
    try:
        yield sqlite
    finally:
        await sqlite.close()


def rows(db: sqlite3.Connection) -> list[tuple[str, int]]:
    return list(db.execute("SELECT k, v FROM t ORDER BY k"))


async def test_work_runs_on_one_named_thread_with_durable_pragmas(thread: SqliteThread) -> None:
    def inspect(db: sqlite3.Connection) -> tuple[str, str, int, int]:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
        (sync,) = db.execute("PRAGMA synchronous").fetchone()
        (busy,) = db.execute("PRAGMA busy_timeout").fetchone()
        return threading.current_thread().name, mode, sync, busy

    name, mode, sync, busy = await thread.run(inspect)
    assert name.startswith("things-sqlite") and name != threading.current_thread().name
    assert (mode, sync, busy) == ("wal", 2, 100)  # synchronous 2 = FULL
    assert (await thread.run(inspect))[0] == name
    await thread.ping()


async def test_a_transaction_commits_or_rolls_back_as_a_whole(thread: SqliteThread) -> None:
    def insert(db: sqlite3.Connection) -> int:
        assert db.in_transaction
        db.execute("INSERT INTO t VALUES ('a', 1)")
        return db.execute("INSERT INTO t VALUES ('b', 2)").rowcount

    assert await thread.transaction(insert) == 1

    def half_then_bug(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('c', 3)")
        raise ValueError("a bug in the rules")

    with pytest.raises(ValueError, match="a bug"):
        await thread.transaction(half_then_bug)

    def half_then_conflict(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('d', 4)")
        db.execute("INSERT INTO t VALUES ('a', 5)")  # primary key taken

    with pytest.raises(StoreUnavailable, match=r"^things database error: UNIQUE"):
        await thread.transaction(half_then_conflict)
    assert await thread.run(rows) == [("a", 1), ("b", 2)]
    assert not await thread.run(lambda db: db.in_transaction)


async def test_a_held_write_lock_is_unavailable_not_a_hang(thread: SqliteThread) -> None:
    other = sqlite3.connect(thread.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match=r"^things database error: database is locked"):
            await thread.transaction(lambda db: db.execute("INSERT INTO t VALUES ('x', 1)"))
        assert await thread.run(rows) == []  # reads still work under another writer (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await thread.transaction(lambda db: db.execute("INSERT INTO t VALUES ('x', 1)"))
    assert await thread.run(rows) == [("x", 1)]


async def test_closed_and_unopenable_stores_refuse(tmp_path: Path) -> None:
    sqlite = SqliteThread(tmp_path / "t.db", "things")
    with pytest.raises(StoreUnavailable, match=r"^things store is not open$"):
        await sqlite.ping()
    await sqlite.open(SCHEMA)
    await sqlite.close()
    await sqlite.close()  # idempotent
    with pytest.raises(StoreUnavailable, match=r"^things store is not open$"):
        await sqlite.run(rows)

    (tmp_path / "a-file").write_text("not a directory")
    blocked = SqliteThread(tmp_path / "a-file" / "t.db", "things")
    with pytest.raises(StoreUnavailable, match=r"^cannot open "):
        await blocked.open(SCHEMA)
    with pytest.raises(StoreUnavailable, match="not open"):
        await blocked.ping()
    broken = SqliteThread(tmp_path / "t2.db", "things")
    with pytest.raises(StoreUnavailable, match=r"^cannot open "):
        await broken.open("CREATE TABLE nonsense (")
    await broken.close()
