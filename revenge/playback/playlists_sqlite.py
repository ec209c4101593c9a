"""The embedded playlist store: ``playlists.db`` in the data dir, on its own thread. ``public_playlists``
indexes the public ones (written in the same transaction as the playlist), so other users find them
without reading everyone's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from revenge.playback.playlists import (
    MAX_PLAYLISTS,
    MAX_PUBLIC,
    Playlist,
    by_name,
    decode,
    encode,
    owned_by_name,
)
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS playlists (
  user_id TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS public_playlists (
  id TEXT NOT NULL PRIMARY KEY, user_id TEXT NOT NULL
) WITHOUT ROWID;
"""
# Playlists stored before the index existed (user_version 0) may be public already: index them once.
_BACKFILL = """
INSERT OR IGNORE INTO public_playlists (id, user_id)
  SELECT id, user_id FROM playlists WHERE json_extract(CAST(data AS TEXT), '$.public') = 1
"""


def _index(db: sqlite3.Connection, user_id: str, playlist: Playlist) -> None:
    if playlist.public:
        db.execute("INSERT OR REPLACE INTO public_playlists (id, user_id) VALUES (?, ?)",
                   (playlist.id, user_id))
    else:
        db.execute("DELETE FROM public_playlists WHERE id = ? AND user_id = ?", (playlist.id, user_id))


class SqlitePlaylistStore:
    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._db = SqliteThread(path, "playlists", busy_timeout_ms)

    async def open(self) -> None:
        await self._db.open(_SCHEMA)

        def backfill(db: sqlite3.Connection) -> None:
            if int(db.execute("PRAGMA user_version").fetchone()[0]) == 0:
                db.execute(_BACKFILL)
                db.execute("PRAGMA user_version = 1")

        await self._db.transaction(backfill)

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
            _index(db, user_id, playlist)
            return True

        return await self._db.transaction(write)

    async def get(self, user_id: str, playlist_id: str) -> Playlist | None:
        row = await self._db.run(lambda db: db.execute(
            "SELECT data FROM playlists WHERE user_id = ? AND id = ?", (user_id, playlist_id)).fetchone())
        return decode(row[0]) if row else None

    async def all(self, user_id: str) -> list[Playlist]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT data FROM playlists WHERE user_id = ?", (user_id,)).fetchall())
        return by_name([decode(r[0]) for r in rows])

    async def put(self, user_id: str, playlist: Playlist) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute("UPDATE playlists SET data = ? WHERE user_id = ? AND id = ?",
                          (encode(playlist), user_id, playlist.id)).rowcount != 1:
                return False
            _index(db, user_id, playlist)
            return True

        return await self._db.transaction(write)

    async def delete(self, user_id: str, playlist_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM public_playlists WHERE id = ? AND user_id = ?", (playlist_id, user_id))
            return db.execute("DELETE FROM playlists WHERE user_id = ? AND id = ?",
                              (user_id, playlist_id)).rowcount == 1

        return await self._db.transaction(write)

    async def public(self) -> list[tuple[str, Playlist]]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT p.user_id, p.data FROM public_playlists x JOIN playlists p "
            "ON p.user_id = x.user_id AND p.id = x.id LIMIT ?", (MAX_PUBLIC,)).fetchall())
        return owned_by_name([(r[0], decode(r[1])) for r in rows])

    async def get_public(self, playlist_id: str) -> tuple[str, Playlist] | None:
        row = await self._db.run(lambda db: db.execute(
            "SELECT p.user_id, p.data FROM public_playlists x JOIN playlists p "
            "ON p.user_id = x.user_id AND p.id = x.id WHERE x.id = ?", (playlist_id,)).fetchone())
        found = decode(row[1]) if row else None
        return (row[0], found) if found is not None and found.public else None
