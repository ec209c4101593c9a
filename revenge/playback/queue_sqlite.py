"""The embedded play-queue store: ``queue.db`` (SQLite, WAL, ``synchronous=FULL``) in the data dir, on
its own thread (``revenge.sqlite_thread.SqliteThread``). A write is one ``BEGIN IMMEDIATE`` transaction
that reads the stored version and writes only if it is the base version of the change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from revenge.playback import queue as rules
from revenge.playback.queue import Queue
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS play_queue (
  user_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  data BLOB NOT NULL
) WITHOUT ROWID;
"""


def _stored(db: sqlite3.Connection, user_id: str) -> Queue:
    row = db.execute("SELECT data FROM play_queue WHERE user_id = ?", (user_id,)).fetchone()
    return rules.EMPTY if row is None else rules.decode(row[0])


class SqliteQueueStore:
    """``QueueStore`` on SQLite; see the module docstring."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._db = SqliteThread(path, "queue", busy_timeout_ms)

    async def open(self) -> None:
        await self._db.open(_SCHEMA)

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()

    async def get(self, user_id: str) -> Queue:
        return await self._db.run(lambda db: _stored(db, user_id))

    async def put(self, user_id: str, queue: Queue, base_version: int) -> Queue | None:
        data = rules.encode(queue)

        def write(db: sqlite3.Connection) -> Queue | None:
            current = _stored(db, user_id)
            if current.version != base_version:
                return current
            db.execute("INSERT INTO play_queue (user_id, version, data) VALUES (?, ?, ?) "
                       "ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, data = excluded.data",
                       (user_id, queue.version, data))
            return None

        return await self._db.transaction(write)
