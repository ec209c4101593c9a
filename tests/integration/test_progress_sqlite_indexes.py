"""The embedded progress store's per-user played lists read covering indexes only, also in a database
made before those indexes existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from revenge.progress.store_sqlite import SqliteStore, played_sql

pytestmark = pytest.mark.anyio

async def test_played_lists_use_covering_indexes_after_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "progress.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)  # as a store of before the covering indexes left it
    db.executescript("DROP INDEX progress_by_last_played; DROP INDEX progress_by_play_count;"
                     "CREATE INDEX progress_recent ON progress (user_id, last_played_at);"
                     "CREATE INDEX progress_frequent ON progress (user_id, play_count);")
    db.close()
    store = SqliteStore(path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                          "AND tbl_name = 'progress'")}
        assert {"progress_by_last_played", "progress_by_play_count"} <= names
        assert not names & {"progress_recent", "progress_frequent"}  # no write pays for them anymore
        for sql in (played_sql("recent"), played_sql("frequent")):
            plan = " ".join(str(r) for r in db.execute("EXPLAIN QUERY PLAN " + sql, ("u", "track", 10)))
            assert "COVERING INDEX" in plan, plan
    finally:
        db.close()
