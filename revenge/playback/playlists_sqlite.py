"""The embedded playlist store: ``playlists.db`` in the data dir, on its own thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from revenge.playback.playlists import MAX_PLAYLISTS, Playlist, decode, encode
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS playlists (
  user_id TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
"""


class SqlitePlaylistStore:
    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._db = SqliteThread(path, "playlists", busy_timeout_ms)

    async def open(self) -> None:
        await self._db.open(_SCHEMA)

    async def close(self) -> None:
        await self._db.close()

    async def add(self, user_id: str, playlist: Playlist) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            count = int(db.execute("SELECT count(*) FROM playlists WHERE user_id = ?",
                                   (user_id,)).fetchone()[0])
            if count >= MAX_PLAYLISTS:
                return False
            db.execute("INSERT INTO playlists (user_id, id, data) VALUES (?, ?, ?)",
                       (user_id, playlist.id, encode(playlist)))
            return True

        return await self._db.transaction(write)

    async def get(self, user_id: str, playlist_id: str) -> Playlist | None:
        row = await self._db.run(lambda db: db.execute(
            "SELECT data FROM playlists WHERE user_id = ? AND id = ?", (user_id, playlist_id)).fetchone())
        return decode(row[0]) if row else None

    async def all(self, user_id: str) -> list[Playlist]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT data FROM playlists WHERE user_id = ?", (user_id,)).fetchall())
        return sorted((decode(r[0]) for r in rows), key=lambda p: (p.name.casefold(), p.id))

    async def put(self, user_id: str, playlist: Playlist) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            return db.execute("UPDATE playlists SET data = ? WHERE user_id = ? AND id = ?",
                              (encode(playlist), user_id, playlist.id)).rowcount == 1

        return await self._db.transaction(write)

    async def delete(self, user_id: str, playlist_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM playlists WHERE user_id = ? AND id = ?",
                              (user_id, playlist_id)).rowcount == 1

        return await self._db.transaction(write)
