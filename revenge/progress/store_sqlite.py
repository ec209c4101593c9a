"""The embedded progress store: ``progress.db`` (SQLite, WAL) in the data dir, the default.

All SQLite work happens on one dedicated thread (``revenge.sqlite_thread.SqliteThread`` owns the
connection), so the event loop never blocks on disk and batches are naturally serialised. A batch is one
``BEGIN IMMEDIATE`` … ``COMMIT``: the rules (``rules.apply_update``) run in Python inside it, on states
read in the same transaction.

Durability: the WAL is fsynced on every commit (``revenge.sqlite_thread`` says why); group commit makes
that one fsync per batch, not per update.

States cache: the states last written by batches (with their device rows) stay in memory, up to
``STATE_CACHE_ENTRIES``, so a batch of updates to keys being played reads nothing from the file: reading
and converting the rows was a third of a batch's time, on the thread that holds the GIL while the event
loop waits for it. An entry is added only after its transaction committed; the user actions (played,
hidden, reset) drop theirs; and any commit by another connection (a backup restore, the sqlite3 CLI)
empties the cache, seen through ``PRAGMA data_version`` at the start of every batch's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from revenge.library.model import ItemType
from revenge.progress import rules
from revenge.progress.durability import SQLITE_DURABILITY, Durability
from revenge.progress.model import (
    DEFAULT_POLICIES,
    STATE_FIELD_KINDS,
    STATE_HASH_FIELDS,
    DevicePosition,
    PlayedItem,
    PlayedOrder,
    Policies,
    ProgressState,
    ProgressUpdate,
    state_values,
)
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
  user_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  item_type TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  position_ms INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  play_count INTEGER NOT NULL,
  completed_count INTEGER NOT NULL,
  first_played_at INTEGER,
  last_played_at INTEGER,
  completed_at INTEGER,
  playback_rate REAL NOT NULL,
  hidden INTEGER NOT NULL,
  version INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  event_ts_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  listen_started_at INTEGER,
  listened_ms INTEGER NOT NULL,
  listen_counted INTEGER NOT NULL,
  PRIMARY KEY (user_id, item_id)
) WITHOUT ROWID;
-- The per-user played lists read these alone (covering: the key adds item_id), as do the continue
-- candidates the first one finds; they replace two that held only their sort column.
DROP INDEX IF EXISTS progress_recent;
DROP INDEX IF EXISTS progress_frequent;
CREATE INDEX IF NOT EXISTS progress_by_last_played
  ON progress (user_id, last_played_at, item_type, play_count);
CREATE INDEX IF NOT EXISTS progress_by_play_count
  ON progress (user_id, play_count, last_played_at, item_type);
CREATE TABLE IF NOT EXISTS progress_device (
  user_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  position_ms INTEGER NOT NULL,
  event_ts_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, item_id, device_id)
) WITHOUT ROWID;
"""

_COLUMNS = ", ".join(STATE_HASH_FIELDS)


def played_sql(order: PlayedOrder) -> str:
    """``played``'s query (parameters: user id, item type, limit)."""
    return ("SELECT item_id, last_played_at, play_count FROM progress WHERE user_id = ? AND item_type = ? "
            + ("AND last_played_at IS NOT NULL ORDER BY last_played_at DESC, play_count DESC"
               if order == "recent" else
               "AND play_count > 0 ORDER BY play_count DESC, last_played_at DESC")
            + ", item_id LIMIT ?")
_UPSERT = (f"INSERT OR REPLACE INTO progress ({_COLUMNS}) "
           f"VALUES ({', '.join('?' for _ in STATE_HASH_FIELDS)})")
_BOOL_INDEXES = tuple(i for i, name in enumerate(STATE_HASH_FIELDS) if STATE_FIELD_KINDS[name] == "b")
# About 1 KB each: the keys of a few thousand listeners, held for the next update of each.
STATE_CACHE_ENTRIES = 8192

Key = tuple[str, str]
# Keys per query of _load_many: two parameters each, well under SQLite's limit on parameters (32 766).
_KEYS_PER_QUERY = 500
_STATE_SELECT = ", ".join(f"t.{name}" for name in STATE_HASH_FIELDS)
_DEVICE_SELECT = "t.user_id, t.item_id, t.device_id, t.position_ms, t.event_ts_ms, t.updated_ms"


def _keys_query(count: int, columns: str, table: str) -> str:
    """SELECT ``columns`` of ``table``'s rows for ``count`` (user_id, item_id) keys given as parameters.
    CROSS JOIN keeps the keys as the outer loop, so each is a primary-key search (``(a, b) IN (VALUES
    …)`` would scan the whole table)."""
    keys = ", ".join("(?, ?)" for _ in range(count))
    return (f"WITH k(user_id, item_id) AS (VALUES {keys}) SELECT {columns} FROM k CROSS JOIN {table} t "
            "ON t.user_id = k.user_id AND t.item_id = k.item_id")


def _row_to_state(row: sqlite3.Row | tuple[object, ...], devices: dict[str, DevicePosition]) -> ProgressState:
    values = list(row)
    for index in _BOOL_INDEXES:
        values[index] = bool(values[index])
    return ProgressState(*values, devices=devices)  # type: ignore[arg-type]


def _state_row(state: ProgressState) -> tuple[object, ...]:
    row = list(state_values(state))
    # Bound as plain ints: sqlite3 would bind a bool too, but only after looking for an adapter for it,
    # which cost more than the rest of binding the row.
    for index in _BOOL_INDEXES:
        row[index] = 1 if row[index] else 0
    return tuple(row)


class SqliteStore:
    """``ProgressStore`` on one SQLite file; see the module docstring for threading and durability."""

    def __init__(self, path: Path, policies: Policies = DEFAULT_POLICIES,
                 busy_timeout_ms: int = 5000) -> None:
        self._policies = policies
        self._sqlite = SqliteThread(path, "progress", busy_timeout_ms)
        # Touched on the store's thread only (inside its calls), so never while a call is in flight.
        self._cache: dict[Key, ProgressState] = {}
        self._data_version: int | None = None

    async def open(self) -> None:
        await self._sqlite.open(_SCHEMA)

    async def close(self) -> None:
        await self._sqlite.close()
        self._cache.clear()
        self._data_version = None

    async def ping(self) -> None:
        await self._sqlite.ping()

    @property
    def durability(self) -> Durability:
        return SQLITE_DURABILITY

    async def check(self) -> Durability:
        # An empty write transaction: it needs the write lock, which a read (ping) does not.
        await self._sqlite.transaction(lambda db: None)
        return SQLITE_DURABILITY

    # --- rows: these run on the store's own thread, inside the calls below --------------------------

    @staticmethod
    def _load_many(db: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, ProgressState | None]:
        """The stored states of ``keys`` (None where there is none), with their device rows: two queries
        per chunk of keys rather than two per key (each statement costs more than its row)."""
        found: dict[Key, ProgressState | None] = dict.fromkeys(keys)
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start:start + _KEYS_PER_QUERY]
            args = [part for key in chunk for part in key]
            devices: dict[Key, dict[str, DevicePosition]] = {}
            for d in db.execute(_keys_query(len(chunk), _DEVICE_SELECT, "progress_device"), args):
                devices.setdefault((d[0], d[1]), {})[d[2]] = DevicePosition(d[3], d[4], d[5])
            for row in db.execute(_keys_query(len(chunk), _STATE_SELECT, "progress"), args):
                key = (row[0], row[1])
                found[key] = _row_to_state(row, devices.get(key, {}))
        return found

    @staticmethod
    def _save_many(db: sqlite3.Connection,
                   changes: Sequence[tuple[ProgressState | None, ProgressState]]) -> None:
        """Write each ``(before, after)``: the state row, and the device rows that changed or went."""
        gone: list[tuple[str, str, str]] = []
        changed: list[tuple[str, str, str, int, int, int]] = []
        for before, after in changes:
            old = before.devices if before is not None else {}
            gone += [(after.user_id, after.item_id, d) for d in old if d not in after.devices]
            changed += [(after.user_id, after.item_id, d, p.position_ms, p.event_ts_ms, p.updated_ms)
                        for d, p in after.devices.items() if old.get(d) != p]
        db.executemany(_UPSERT, [_state_row(after) for _, after in changes])
        if gone:
            db.executemany("DELETE FROM progress_device WHERE user_id = ? AND item_id = ? AND device_id = ?",
                           gone)
        if changed:
            db.executemany("INSERT OR REPLACE INTO progress_device "
                           "(user_id, item_id, device_id, position_ms, event_ts_ms, updated_ms) "
                           "VALUES (?, ?, ?, ?, ?, ?)", changed)

    def _cached(self, db: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, ProgressState | None]:
        """``_load_many`` through the cache; called first thing in a write transaction (which holds the
        write lock, so ``data_version`` counts every other connection's commit up to now)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._cache.clear()
            self._data_version = version
        cache = self._cache
        found: dict[Key, ProgressState | None] = {}
        missing: list[Key] = []
        for key in keys:
            state = cache.get(key)
            if state is None:
                missing.append(key)
            found[key] = state
        if missing:
            found.update(self._load_many(db, missing))
        return found

    def _remember(self, written: dict[Key, ProgressState]) -> None:
        """After COMMIT: ``written`` becomes the newest of the cache, the oldest entries go past the bound."""
        cache = self._cache
        for key, state in written.items():
            cache.pop(key, None)
            cache[key] = state
        for _ in range(len(cache) - STATE_CACHE_ENTRIES):
            del cache[next(iter(cache))]

    @classmethod
    def _load(cls, db: sqlite3.Connection, user_id: str, item_id: str) -> ProgressState | None:
        return cls._load_many(db, [(user_id, item_id)])[user_id, item_id]

    # --- the contract ------------------------------------------------------------------------------

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        if not updates:
            return []
        batch = list(updates)

        written: dict[Key, ProgressState] = {}

        def work(db: sqlite3.Connection) -> list[ProgressState]:
            loaded = self._cached(db, list(dict.fromkeys((u.user_id, u.item_id) for u in batch)))
            policies = self._policies
            results: list[ProgressState] = []
            for update in batch:
                key = (update.user_id, update.item_id)
                state = rules.apply_update(written.get(key, loaded[key]), update, policies[update.item_type])
                written[key] = state
                results.append(state)
            self._save_many(db, [(loaded[key], state) for key, state in written.items()])
            return [state.without_devices() for state in results]  # the contract: no device rows

        return await self._sqlite.transaction(work, lambda _: self._remember(written))

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        return await self._sqlite.run(lambda db: self._load(db, user_id, item_id))

    async def continue_listening(
        self, user_id: str, item_type: ItemType | None, limit: int, now_ms: int
    ) -> list[ProgressState]:
        # The WHERE clause is rules.is_continue_candidate in SQL (so LIMIT can be pushed down); the
        # result still goes through rules.select_continue, the single source of truth.
        sql = (f"SELECT {_COLUMNS} FROM progress WHERE user_id = ? AND last_played_at >= ? "
               "AND position_ms >= ? AND completed = 0 AND hidden = 0")
        args: list[object] = [user_id, now_ms - rules.CONTINUE_MAX_AGE_MS, rules.CONTINUE_MIN_POSITION_MS]
        if item_type is not None:
            sql += " AND item_type = ?"
            args.append(item_type)
        sql += " ORDER BY last_played_at DESC, item_id ASC LIMIT ?"
        args.append(limit)

        def work(db: sqlite3.Connection) -> list[ProgressState]:
            return [_row_to_state(row, {}) for row in db.execute(sql, args)]

        return rules.select_continue(await self._sqlite.run(work), item_type, limit, now_ms)

    async def played(self, user_id: str, item_type: ItemType, order: PlayedOrder,
                     limit: int) -> list[PlayedItem]:
        sql = played_sql(order)

        def work(db: sqlite3.Connection) -> list[PlayedItem]:
            rows = db.execute(sql, (user_id, item_type, limit))
            return [PlayedItem(i, at or 0, n) for i, at, n in rows]

        return await self._sqlite.run(work)

    async def _modify(self, user_id: str, item_id: str,
                      change: Callable[[ProgressState | None], ProgressState]) -> ProgressState:
        def work(db: sqlite3.Connection) -> ProgressState:
            self._cache.pop((user_id, item_id), None)  # the next batch reads the row this writes
            before = self._load(db, user_id, item_id)
            after = change(before)
            self._save_many(db, [(before, after)])
            return after

        return await self._sqlite.transaction(work)

    async def mark_played(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int
    ) -> ProgressState:
        return await self._modify(user_id, item_id, lambda s: rules.mark_played(
            s, user_id, item_id, item_type, duration_ms, now_ms))

    async def mark_unplayed(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int
    ) -> ProgressState:
        return await self._modify(user_id, item_id, lambda s: rules.mark_unplayed(
            s, user_id, item_id, item_type, duration_ms, now_ms))

    async def set_hidden(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, hidden: bool, now_ms: int
    ) -> ProgressState:
        return await self._modify(user_id, item_id, lambda s: rules.set_hidden(
            s, user_id, item_id, item_type, duration_ms, hidden, now_ms))

    async def reset(self, user_id: str, item_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            key = (user_id, item_id)
            self._cache.pop(key, None)
            cur = db.execute("DELETE FROM progress WHERE user_id = ? AND item_id = ?", key)
            db.execute("DELETE FROM progress_device WHERE user_id = ? AND item_id = ?", key)
            return cur.rowcount > 0

        return await self._sqlite.transaction(work)
