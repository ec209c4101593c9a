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
from revenge.playback.scrobbles import DAY_MS, AddResult, DayTotal, Scrobble
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
  sent_at INTEGER,
  PRIMARY KEY (user_id, item_id, started_at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scrobble_time ON scrobble (user_id, started_at);
CREATE INDEX IF NOT EXISTS scrobble_outbox ON scrobble (user_id, started_at, item_id) WHERE sent_at IS NULL;
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

_SCROBBLE_COLUMNS = ("user_id, item_id, item_type, started_at, listened_ms, device_id, source, recorded_at, "
                     "sent_at")

_INSERT_SCROBBLE = f"INSERT INTO scrobble ({_SCROBBLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _scrobble(row: Sequence[object]) -> Scrobble:
    return Scrobble(*row)  # type: ignore[arg-type]


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
        return None if row is None else _scrobble(row)

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
                                s.source, s.recorded_at, s.sent_at))
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

    async def unsent(self, user_id: str, limit: int) -> list[Scrobble]:
        def work(db: sqlite3.Connection) -> list[Scrobble]:
            rows = db.execute(f"SELECT {_SCROBBLE_COLUMNS} FROM scrobble "
                              "WHERE user_id = ? AND sent_at IS NULL "
                              "ORDER BY started_at, item_id LIMIT ?", (user_id, limit))
            return [_scrobble(row) for row in rows]

        return await self._sqlite.run(work)

    async def mark_sent(self, user_id: str, scrobble_ids: Sequence[str], now_ms: int) -> int:
        keys = [key for key in map(_split_id, scrobble_ids) if key is not None]
        if not keys:
            return 0

        def work(db: sqlite3.Connection) -> int:
            marked = 0
            for item_id, started_at in keys:
                cur = db.execute("UPDATE scrobble SET sent_at = ? WHERE user_id = ? AND item_id = ? "
                                 "AND started_at = ? AND sent_at IS NULL",
                                 (now_ms, user_id, item_id, started_at))
                marked += cur.rowcount
            return marked

        return await self._sqlite.transaction(work)

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
