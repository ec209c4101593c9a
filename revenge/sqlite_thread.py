"""One SQLite connection owned by one dedicated thread: the plumbing shared by the embedded stores.

A single-thread executor owns the connection, so the event loop never blocks on disk and the work of a
store is naturally serialised. ``transaction`` runs a function inside ``BEGIN IMMEDIATE`` … ``COMMIT``
(the write lock is taken up front, so rules run on rows read in the same transaction); ``run`` runs it
in autocommit mode (reads).

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. With WAL, ``NORMAL`` already survives a
kill -9 of the process (a committed transaction is in the WAL file in the OS cache), but not an OS crash
or power cut, which can drop the last transactions. Acknowledged must mean durable, so FULL fsyncs the
WAL on every commit.

Every failure is ``StoreUnavailable`` (the caller answers 503): a file that cannot be opened, a closed
store, any ``sqlite3.Error`` (after rolling back what the failed call had begun).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from revenge.errors import StoreUnavailable

T = TypeVar("T")


class SqliteThread:
    """The connection to ``path`` on its own thread; ``name`` ("progress", "records") names the thread
    and the errors ("progress store is not open", "records database error: …")."""

    def __init__(self, path: Path, name: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.name = name
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    def _not_open(self) -> StoreUnavailable:
        return StoreUnavailable(f"{self.name} store is not open")

    async def open(self, schema: str) -> None:
        """Connect (creating the file and its directory) and run ``schema`` (idempotent DDL)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-sqlite")

        def connect() -> None:
            db: sqlite3.Connection | None = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                # Another process (a backup, sqlite3 CLI) holding the write lock longer than this makes
                # the call fail with StoreUnavailable (503) rather than hang the requests.
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
                db.executescript(schema)
            except (sqlite3.Error, OSError) as exc:
                if db is not None:
                    db.close()  # a half-opened connection must not outlive the failed open
                raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the connection and stop the thread. Idempotent; afterwards every call is
        ``StoreUnavailable``."""
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
        await self.run(lambda db: db.execute("SELECT 1").fetchone())

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the store's thread, in autocommit mode."""
        return await self._call(fn, transaction=False)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T],
                          on_commit: Callable[[T], None] | None = None) -> T:
        """``fn(connection)`` on the store's thread inside ``BEGIN IMMEDIATE`` … ``COMMIT``; any exception
        rolls the whole call back. ``on_commit(result)`` runs on the same thread once COMMIT succeeded,
        before the next call starts (what a store keeps in memory follows what is on disk, never ahead)."""
        return await self._call(fn, transaction=True, on_commit=on_commit)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], transaction: bool,
                    on_commit: Callable[[T], None] | None = None) -> T:
        if self._executor is None:
            raise self._not_open()

        def call() -> T:
            db = self._db
            if db is None:
                raise self._not_open()
            try:
                if not transaction:
                    return fn(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(db)
                except BaseException:
                    db.rollback()
                    raise
                db.commit()
                if on_commit is not None:
                    on_commit(result)
                return result
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.rollback()
                raise StoreUnavailable(f"{self.name} database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
