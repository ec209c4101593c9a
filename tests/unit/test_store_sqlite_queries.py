"""The SQLite store's batched lookups search the primary keys; they never scan a table."""

from __future__ import annotations

import sqlite3

from revenge.progress.store_sqlite import _DEVICE_SELECT, _SCHEMA, _STATE_SELECT, _keys_query


def test_batched_lookups_search_the_primary_key() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    db.executemany("INSERT INTO progress_device VALUES (?, ?, ?, 0, 0, 0)",
                   [(str(u), f"item{i}", "phone") for u in range(50) for i in range(50)])
    db.execute("ANALYZE")  # with statistics too, the keys stay the outer loop
    for columns, table in ((_STATE_SELECT, "progress"), (_DEVICE_SELECT, "progress_device")):
        plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + _keys_query(3, columns, table),
                                                         ["1", "item1", "2", "item2", "3", "item3"]))
        assert "SEARCH t USING PRIMARY KEY" in plan, plan
        assert f"SCAN {table}" not in plan and "SCAN t" not in plan, plan
    query = _keys_query(2, _DEVICE_SELECT, "progress_device")
    rows = db.execute(query, ["1", "item1", "9", "nope"]).fetchall()
    assert rows == [("1", "item1", "phone", 0, 0, 0)]
