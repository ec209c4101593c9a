"""The embedded progress store: ``progress.db`` (SQLite, WAL) in the data dir, the default.

All SQLite work happens on one dedicated thread (a single-thread executor owns the connection), so the
event loop never blocks on disk and batches are naturally serialised. A batch is one ``BEGIN IMMEDIATE``
… ``COMMIT``: the rules (``rules.apply_update``) run in Python inside it, on states read in the same
transaction.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. With WAL, ``NORMAL`` already survives a
kill -9 of the process (a committed transaction is in the WAL file in the OS cache), but not an OS crash
or power cut, which can drop the last transactions. Acknowledged must mean durable, so FULL fsyncs the
WAL on every commit; group commit makes that one fsync per batch, not per update.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from revenge.library.model import ItemType
from revenge.progress import rules
from revenge.progress.model import (
    DEFAULT_POLICIES,
    STATE_HASH_FIELDS,
    DevicePosition,
    Policies,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.store import StoreUnavailable

T = TypeVar("T")

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
CREATE INDEX IF NOT EXISTS progress_recent ON progress (user_id, last_played_at);
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
_UPSERT = (f"INSERT OR REPLACE INTO progress ({_COLUMNS}) "
           f"VALUES ({', '.join('?' for _ in STATE_HASH_FIELDS)})")
_BOOL_FIELDS = frozenset({"completed", "hidden", "listen_counted"})

Key = tuple[str, str]


def _row_to_state(row: sqlite3.Row | tuple[object, ...], devices: dict[str, DevicePosition]) -> ProgressState:
    values = dict(zip(STATE_HASH_FIELDS, row, strict=True))
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    return ProgressState(devices=devices, **values)  # type: ignore[arg-type]


def _state_row(state: ProgressState) -> tuple[object, ...]:
    return tuple(int(v) if isinstance(v, bool) else v for v in (getattr(state, f) for f in STATE_HASH_FIELDS))


class SqliteStore:
    """``ProgressStore`` on one SQLite file; see the module docstring for threading and durability."""

    def __init__(self, path: Path, policies: Policies = DEFAULT_POLICIES,
                 busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._policies = policies
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    # --- plumbing: everything below runs on the store's own thread ---------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise StoreUnavailable("progress store is not open")

        def call() -> T:
            if self._db is None:
                raise StoreUnavailable("progress store is not open")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.rollback()
                raise StoreUnavailable(f"progress database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _transaction(self, db: sqlite3.Connection, body: Callable[[], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            db.rollback()
            raise
        db.commit()
        return result

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="progress-sqlite")

        def connect() -> None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                # Another process (a backup, sqlite3 CLI) holding the write lock longer than this makes
                # the batch fail with StoreUnavailable (503) rather than hang the requests.
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
                db.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open {self._path}: {exc}") from exc
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def disconnect() -> None:
            db, self._db = self._db, None
            if db is not None:
                db.close()

        await asyncio.get_running_loop().run_in_executor(executor, disconnect)
        executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    @staticmethod
    def _load(db: sqlite3.Connection, user_id: str, item_id: str) -> ProgressState | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM progress WHERE user_id = ? AND item_id = ?",
                         (user_id, item_id)).fetchone()
        if row is None:
            return None
        devices = {
            d[0]: DevicePosition(d[1], d[2], d[3])
            for d in db.execute(
                "SELECT device_id, position_ms, event_ts_ms, updated_ms FROM progress_device "
                "WHERE user_id = ? AND item_id = ?", (user_id, item_id))
        }
        return _row_to_state(row, devices)

    @staticmethod
    def _save(db: sqlite3.Connection, before: ProgressState | None, after: ProgressState) -> None:
        db.execute(_UPSERT, _state_row(after))
        old = before.devices if before is not None else {}
        gone = [(after.user_id, after.item_id, d) for d in old if d not in after.devices]
        if gone:
            db.executemany("DELETE FROM progress_device WHERE user_id = ? AND item_id = ? AND device_id = ?",
                           gone)
        changed = [(after.user_id, after.item_id, d, p.position_ms, p.event_ts_ms, p.updated_ms)
                   for d, p in after.devices.items() if old.get(d) != p]
        if changed:
            db.executemany("INSERT OR REPLACE INTO progress_device "
                           "(user_id, item_id, device_id, position_ms, event_ts_ms, updated_ms) "
                           "VALUES (?, ?, ?, ?, ?, ?)", changed)

    # --- the contract ------------------------------------------------------------------------------

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        if not updates:
            return []
        batch = list(updates)

        def work(db: sqlite3.Connection) -> list[ProgressState]:
            def body() -> list[ProgressState]:
                loaded: dict[Key, ProgressState | None] = {}
                current: dict[Key, ProgressState | None] = {}
                results: list[ProgressState] = []
                for update in batch:
                    key = (update.user_id, update.item_id)
                    if key not in current:
                        loaded[key] = current[key] = self._load(db, *key)
                    state = rules.apply_update(current[key], update, self._policies[update.item_type])
                    current[key] = state
                    results.append(state)
                for key, state in current.items():
                    if state is not None:
                        self._save(db, loaded[key], state)
                return results

            return self._transaction(db, body)

        return await self._run(work)

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        return await self._run(lambda db: self._load(db, user_id, item_id))

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

        return rules.select_continue(await self._run(work), item_type, limit, now_ms)

    async def _modify(self, user_id: str, item_id: str,
                      change: Callable[[ProgressState | None], ProgressState]) -> ProgressState:
        def work(db: sqlite3.Connection) -> ProgressState:
            def body() -> ProgressState:
                before = self._load(db, user_id, item_id)
                after = change(before)
                self._save(db, before, after)
                return after

            return self._transaction(db, body)

        return await self._run(work)

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
            def body() -> bool:
                key = (user_id, item_id)
                cur = db.execute("DELETE FROM progress WHERE user_id = ? AND item_id = ?", key)
                db.execute("DELETE FROM progress_device WHERE user_id = ? AND item_id = ?", key)
                return cur.rowcount > 0

            return self._transaction(db, body)

        return await self._run(work)
