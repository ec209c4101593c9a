"""The embedded records store: ``records.db`` (SQLite, WAL) in the data dir, next to ``progress.db``.

Like the progress store, all SQLite work runs on one dedicated thread that owns the connection
(``revenge.sqlite_thread.SqliteThread``: the event loop never blocks on disk), every write is one
``BEGIN IMMEDIATE`` … ``COMMIT`` applying the pure rules of ``scrobbles``/``bookmarks`` to rows read in
the same transaction, and ``synchronous=FULL`` makes an acknowledged write survive a power cut, not only
a crash of the process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from revenge.playback import scrobbles as rules
from revenge.playback.bookmarks import Bookmark
from revenge.playback.scrobbles import DAY_MS, AddResult, DayTotal, Delivery, Mark, Scrobble, ServiceName
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scrobble (
  user_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  item_type TEXT NOT NULL,
  listened_ms INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  source TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, item_id, started_at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scrobble_time ON scrobble (user_id, started_at);
CREATE TABLE IF NOT EXISTS outbox (
  user_id TEXT NOT NULL,
  service TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  item_id TEXT NOT NULL,
  PRIMARY KEY (user_id, service, started_at, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery (
  user_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  service TEXT NOT NULL,
  state TEXT NOT NULL,
  at INTEGER NOT NULL,
  reason TEXT,
  PRIMARY KEY (user_id, item_id, started_at, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bookmark (
  user_id TEXT NOT NULL,
  id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  position_ms INTEGER NOT NULL,
  note TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bookmark_item ON bookmark (user_id, item_id, position_ms);
"""

_SCROBBLE_COLUMNS = "user_id, item_id, item_type, started_at, listened_ms, device_id, source, recorded_at"

_INSERT_SCROBBLE = f"INSERT INTO scrobble ({_SCROBBLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SCHEMA_VERSION = 1  # 1: per-service outbox and delivery tables (0 had one sent_at column)


def _migrate(db: sqlite3.Connection) -> None:
    """A records.db of version 0 (one ``sent_at`` per record, never set: nothing forwarded them) gets
    every track queued for every service; its ``sent_at`` column stays, unused."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version >= _SCHEMA_VERSION:
        return
    for service in rules.SERVICES:
        db.execute("INSERT OR IGNORE INTO outbox (user_id, service, started_at, item_id) "
                   "SELECT user_id, ?, started_at, item_id FROM scrobble WHERE item_type = 'track'",
                   (service,))
    db.execute("DROP INDEX IF EXISTS scrobble_outbox")
    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _with_deliveries(db: sqlite3.Connection, row: Sequence[object]) -> Scrobble:
    user_id, item_id, started_at = row[0], row[1], row[3]
    deliveries = tuple(
        Delivery(service, state, at, reason) for service, state, at, reason in db.execute(
            "SELECT service, state, at, reason FROM delivery WHERE user_id = ? AND item_id = ? "
            "AND started_at = ? ORDER BY service", (user_id, item_id, started_at)))
    return Scrobble(*row, deliveries=deliveries)  # type: ignore[arg-type]


def _split_id(scrobble_id: str) -> tuple[str, int] | None:
    if not rules.SCROBBLE_ID_RE.fullmatch(scrobble_id):
        return None
    item_id, _, started = scrobble_id.partition("-")
    return item_id, int(started)


class SqliteRecordStore:
    """``RecordStore`` on one SQLite file; see the module docstring for threading and durability."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._sqlite = SqliteThread(path, "records", busy_timeout_ms)

    async def open(self) -> None:
        await self._sqlite.open(_SCHEMA)
        await self._sqlite.transaction(_migrate)

    async def close(self) -> None:
        await self._sqlite.close()

    async def ping(self) -> None:
        await self._sqlite.ping()

    # --- scrobbles -----------------------------------------------------------------------------------

    @staticmethod
    def _load(db: sqlite3.Connection, user_id: str, item_id: str, started_at: int) -> Scrobble | None:
        row = db.execute(f"SELECT {_SCROBBLE_COLUMNS} FROM scrobble "
                         "WHERE user_id = ? AND item_id = ? AND started_at = ?",
                         (user_id, item_id, started_at)).fetchone()
        return None if row is None else _with_deliveries(db, row)

    async def add_scrobbles(self, scrobbles: Sequence[Scrobble]) -> list[AddResult]:
        if not scrobbles:
            return []
        batch = list(scrobbles)

        def work(db: sqlite3.Connection) -> list[AddResult]:
            results = []
            for incoming in batch:
                existing = self._load(db, incoming.user_id, incoming.item_id, incoming.started_at)
                result = rules.add_to(existing, incoming)
                s = result.scrobble
                if existing is None:
                    db.execute(_INSERT_SCROBBLE,
                               (s.user_id, s.item_id, s.item_type, s.started_at, s.listened_ms, s.device_id,
                                s.source, s.recorded_at))
                    for service in rules.queued_services(s.item_type):
                        db.execute("INSERT INTO outbox (user_id, service, started_at, item_id) "
                                   "VALUES (?, ?, ?, ?)", (s.user_id, service, s.started_at, s.item_id))
                elif s != existing:
                    db.execute("UPDATE scrobble SET listened_ms = ? "
                               "WHERE user_id = ? AND item_id = ? AND started_at = ?",
                               (s.listened_ms, s.user_id, s.item_id, s.started_at))
                results.append(result)
            return results

        return await self._sqlite.transaction(work)

    async def get_scrobble(self, user_id: str, scrobble_id: str) -> Scrobble | None:
        key = _split_id(scrobble_id)
        if key is None:
            return None
        return await self._sqlite.run(lambda db: self._load(db, user_id, *key))

    async def outbox(self, user_id: str, service: ServiceName, limit: int) -> list[Scrobble]:
        def work(db: sqlite3.Connection) -> list[Scrobble]:
            rows = db.execute(f"SELECT {', '.join('s.' + c for c in _SCROBBLE_COLUMNS.split(', '))} "
                              "FROM outbox o JOIN scrobble s ON s.user_id = o.user_id "
                              "AND s.item_id = o.item_id AND s.started_at = o.started_at "
                              "WHERE o.user_id = ? AND o.service = ? "
                              "ORDER BY o.started_at, o.item_id LIMIT ?",
                              (user_id, service, limit)).fetchall()
            return [_with_deliveries(db, row) for row in rows]

        return await self._sqlite.run(work)

    async def mark(self, user_id: str, service: ServiceName, marks: Sequence[Mark], now_ms: int) -> int:
        keyed = [(key, m.delivery(service, now_ms)) for m in marks
                 if (key := _split_id(m.scrobble_id)) is not None]
        if not keyed:
            return 0

        def work(db: sqlite3.Connection) -> int:
            taken = 0
            for (item_id, started_at), d in keyed:
                cur = db.execute("DELETE FROM outbox WHERE user_id = ? AND service = ? AND started_at = ? "
                                 "AND item_id = ?", (user_id, service, started_at, item_id))
                if cur.rowcount:
                    db.execute("INSERT OR REPLACE INTO delivery (user_id, item_id, started_at, service, "
                               "state, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (user_id, item_id, started_at, service, d.state, d.at, d.reason))
                    taken += 1
            return taken

        return await self._sqlite.transaction(work)

    async def outbox_size(self, user_id: str, service: ServiceName) -> int:
        def work(db: sqlite3.Connection) -> int:
            (count,) = db.execute("SELECT COUNT(*) FROM outbox WHERE user_id = ? AND service = ?",
                                  (user_id, service)).fetchone()
            return int(count)

        return await self._sqlite.run(work)

    async def listening_totals(self, user_id: str, first_day: int, last_day: int) -> list[DayTotal]:
        def work(db: sqlite3.Connection) -> list[DayTotal]:
            rows = db.execute(
                "SELECT started_at / ? AS day, item_type, SUM(listened_ms), COUNT(*) FROM scrobble "
                "WHERE user_id = ? AND started_at >= ? AND started_at < ? "
                "GROUP BY day, item_type ORDER BY day, item_type",
                (DAY_MS, user_id, first_day * DAY_MS, (last_day + 1) * DAY_MS))
            return [DayTotal(int(day), item_type, int(ms), int(n)) for day, item_type, ms, n in rows]

        return await self._sqlite.run(work)

    # --- bookmarks -----------------------------------------------------------------------------------

    async def add_bookmark(self, bookmark: Bookmark, max_per_item: int) -> bool:
        b = bookmark

        def work(db: sqlite3.Connection) -> bool:
            (count,) = db.execute("SELECT COUNT(*) FROM bookmark WHERE user_id = ? AND item_id = ?",
                                  (b.user_id, b.item_id)).fetchone()
            if count >= max_per_item:
                return False
            db.execute("INSERT INTO bookmark (user_id, id, item_id, position_ms, note, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (b.user_id, b.id, b.item_id, b.position_ms, b.note,
                                                     b.created_at))
            return True

        return await self._sqlite.transaction(work)

    async def bookmarks(self, user_id: str, item_id: str) -> list[Bookmark]:
        def work(db: sqlite3.Connection) -> list[Bookmark]:
            rows = db.execute("SELECT id, position_ms, note, created_at FROM bookmark "
                              "WHERE user_id = ? AND item_id = ? ORDER BY position_ms, created_at, id",
                              (user_id, item_id))
            return [Bookmark(user_id, item_id, bid, pos, note, created) for bid, pos, note, created in rows]

        return await self._sqlite.run(work)

    async def delete_bookmark(self, user_id: str, item_id: str, bookmark_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM bookmark WHERE user_id = ? AND item_id = ? AND id = ?",
                             (user_id, item_id, bookmark_id))
            return cur.rowcount > 0

        return await self._sqlite.transaction(work)
