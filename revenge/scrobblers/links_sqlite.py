"""The embedded link store: ``scrobblers.db`` (SQLite) in the data dir; see ``links`` for the contract."""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

from revenge.playback.scrobbles import ServiceName
from revenge.scrobblers.model import Link
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS link (
  user_id TEXT NOT NULL,
  service TEXT NOT NULL,
  account TEXT NOT NULL,
  secret TEXT NOT NULL,
  linked_at INTEGER NOT NULL,
  stopped TEXT,
  last_error TEXT,
  last_error_at INTEGER,
  last_sent_at INTEGER,
  PRIMARY KEY (user_id, service)
) WITHOUT ROWID;
"""
_COLUMNS = "user_id, service, account, secret, linked_at, stopped, last_error, last_error_at, last_sent_at"


class LocalLeases:
    """Leases of one process (the SQLite store): a dict of (user, service) → (token, expiry)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[str, float]] = {}

    def acquire(self, user_id: str, service: str, ttl_ms: int) -> str | None:
        now = time.monotonic()
        held = self._held.get((user_id, service))
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(16)
        self._held[(user_id, service)] = (token, now + ttl_ms / 1000)
        return token

    def release(self, user_id: str, service: str, token: str) -> None:
        held = self._held.get((user_id, service))
        if held is not None and held[0] == token:
            del self._held[(user_id, service)]


class SqliteLinkStore:
    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._sqlite = SqliteThread(path, "scrobblers", busy_timeout_ms)
        self._leases = LocalLeases()

    async def open(self) -> None:
        await self._sqlite.open(_SCHEMA)

    async def close(self) -> None:
        await self._sqlite.close()

    async def get(self, user_id: str, service: ServiceName) -> Link | None:
        def work(db: sqlite3.Connection) -> Link | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM link WHERE user_id = ? AND service = ?",
                             (user_id, service)).fetchone()
            return None if row is None else Link(*row)

        return await self._sqlite.run(work)

    async def put(self, link: Link) -> None:
        values = (link.user_id, link.service, link.account, link.secret, link.linked_at, link.stopped,
                  link.last_error, link.last_error_at, link.last_sent_at)
        sql = f"INSERT OR REPLACE INTO link ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        await self._sqlite.transaction(lambda db: db.execute(sql, values))

    async def delete(self, user_id: str, service: ServiceName) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM link WHERE user_id = ? AND service = ?",
                              (user_id, service)).rowcount > 0

        return await self._sqlite.transaction(work)

    async def linked(self) -> list[tuple[str, ServiceName]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, ServiceName]]:
            rows = db.execute("SELECT user_id, service FROM link ORDER BY user_id, service")
            return [(user_id, service) for user_id, service in rows]

        return await self._sqlite.run(work)

    async def note(self, user_id: str, service: ServiceName, linked_at: int, at: int, *,
                   error: str | None = None, permanent: bool = False) -> None:
        if error is None:
            sql = "UPDATE link SET last_sent_at = ?, last_error = NULL, last_error_at = NULL"
            args: tuple[object, ...] = (at,)
        elif permanent:
            sql = "UPDATE link SET last_error = ?, last_error_at = ?, stopped = ?"
            args = (error, at, error)
        else:
            sql = "UPDATE link SET last_error = ?, last_error_at = ?"
            args = (error, at)
        await self._sqlite.transaction(
            lambda db: db.execute(sql + " WHERE user_id = ? AND service = ? AND linked_at = ?",
                                  (*args, user_id, service, linked_at)))

    async def acquire(self, user_id: str, service: ServiceName, ttl_ms: int) -> str | None:
        return self._leases.acquire(user_id, service, ttl_ms)

    async def release(self, user_id: str, service: ServiceName, token: str) -> None:
        self._leases.release(user_id, service, token)
