"""The embedded store of stars and ratings: ``marks.db`` in the data dir, on its own thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from revenge.playback.marks import MAX_LOOKUP, MAX_MARKS, Marks, TooManyMarks, check_rating, read_whole
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stars (
  user_id TEXT NOT NULL, key TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ratings (
  user_id TEXT NOT NULL, key TEXT NOT NULL, rating INTEGER NOT NULL, PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
"""


class SqliteMarkStore:
    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._db = SqliteThread(path, "marks", busy_timeout_ms)

    async def open(self) -> None:
        await self._db.open(_SCHEMA)

    async def close(self) -> None:
        await self._db.close()

    async def star(self, user_id: str, keys: Sequence[str], at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            have = int(db.execute("SELECT count(*) FROM stars WHERE user_id = ?", (user_id,)).fetchone()[0])
            new = [k for k in dict.fromkeys(keys) if db.execute(
                "SELECT 1 FROM stars WHERE user_id = ? AND key = ?", (user_id, k)).fetchone() is None]
            if have + len(new) > MAX_MARKS:
                raise TooManyMarks(f"at most {MAX_MARKS} stars")
            db.executemany("INSERT INTO stars (user_id, key, at_ms) VALUES (?, ?, ?)",
                           [(user_id, k, at_ms) for k in new])

        await self._db.transaction(write)

    async def unstar(self, user_id: str, keys: Sequence[str]) -> None:
        await self._db.transaction(lambda db: db.executemany(
            "DELETE FROM stars WHERE user_id = ? AND key = ?", [(user_id, k) for k in keys]))

    async def starred(self, user_id: str) -> dict[str, int]:
        return await self._db.run(lambda db: dict(db.execute(
            "SELECT key, at_ms FROM stars WHERE user_id = ? ORDER BY at_ms, key", (user_id,)).fetchall()))

    async def set_rating(self, user_id: str, key: str, rating: int) -> None:
        check_rating(rating)

        def write(db: sqlite3.Connection) -> None:
            if rating == 0:
                db.execute("DELETE FROM ratings WHERE user_id = ? AND key = ?", (user_id, key))
                return
            known = db.execute("SELECT 1 FROM ratings WHERE user_id = ? AND key = ?",
                               (user_id, key)).fetchone()
            if known is None and int(db.execute("SELECT count(*) FROM ratings WHERE user_id = ?",
                                                (user_id,)).fetchone()[0]) >= MAX_MARKS:
                raise TooManyMarks(f"at most {MAX_MARKS} ratings")
            db.execute("INSERT INTO ratings (user_id, key, rating) VALUES (?, ?, ?) "
                       "ON CONFLICT (user_id, key) DO UPDATE SET rating = excluded.rating",
                       (user_id, key, rating))

        await self._db.transaction(write)

    async def ratings(self, user_id: str) -> dict[str, int]:
        return await self._db.run(lambda db: dict(db.execute(
            "SELECT key, rating FROM ratings WHERE user_id = ?", (user_id,)).fetchall()))

    async def marks_of(self, user_id: str, keys: Sequence[str]) -> Marks:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return Marks()

        def read(db: sqlite3.Connection) -> Marks:
            found = Marks()
            for table, column, into in (("stars", "at_ms", found.starred),
                                        ("ratings", "rating", found.ratings)):
                select = f"SELECT key, {column} FROM {table} WHERE user_id = ?"
                held = int(db.execute(  # counted up to one past the keys asked: bounded by them
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE user_id = ? LIMIT ?)",
                    (user_id, len(unique) + 1)).fetchone()[0])
                if read_whole(held, len(unique)):
                    asked = set(unique)
                    into.update(row for row in db.execute(select, (user_id,)) if row[0] in asked)
                    continue
                for start in range(0, len(unique), MAX_LOOKUP):
                    batch = unique[start:start + MAX_LOOKUP]
                    into.update(db.execute(f"{select} AND key IN ({','.join('?' * len(batch))})",
                                           (user_id, *batch)))
            return found

        return await self._db.run(read)
