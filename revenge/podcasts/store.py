"""``podcasts.db`` (SQLite, WAL, on its own thread): subscriptions and their episodes, one row each.

Rows come back as plain dicts (column → value); the service turns them into answers. Per instance, also
with a Redis store: see the README's Podcasts section for why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from revenge.podcasts.feeds import Feed, FeedEpisode
from revenge.sqlite_thread import SqliteThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS podcast (
  id TEXT PRIMARY KEY,
  feed_url TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  image TEXT,
  cover_url TEXT,
  link TEXT,
  folder TEXT NOT NULL,
  auto_download INTEGER NOT NULL,
  auto_download_off_reason TEXT,
  new_per_check INTEGER NOT NULL,
  keep_last INTEGER NOT NULL,
  check_interval_seconds REAL NOT NULL,
  etag TEXT,
  last_modified TEXT,
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_checked_at REAL,
  next_check_at REAL NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS episode (
  id TEXT PRIMARY KEY,
  podcast_id TEXT NOT NULL REFERENCES podcast(id) ON DELETE CASCADE,
  guid TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  published REAL,
  duration_seconds REAL,
  enclosure_url TEXT NOT NULL,
  enclosure_type TEXT,
  enclosure_length INTEGER,
  season INTEGER,
  episode INTEGER,
  image TEXT,
  chapters BLOB NOT NULL,
  chapters_url TEXT,
  download TEXT NOT NULL DEFAULT 'none',
  file TEXT,
  item_id TEXT,
  error TEXT,
  downloaded_at REAL,
  seen_at REAL NOT NULL,
  UNIQUE (podcast_id, guid)
);
CREATE INDEX IF NOT EXISTS episode_by_podcast ON episode (podcast_id, published);
"""

SETTABLE = ("auto_download", "new_per_check", "keep_last", "check_interval_seconds")


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    rows = _rows(cursor)
    return rows[0] if rows else None


def _chapters_json(episode: FeedEpisode) -> bytes:
    return orjson.dumps(
        [{"start_seconds": c.start_seconds, "title": c.title, "url": c.url} for c in episode.chapters]
    )


def _add_cover_url(db: sqlite3.Connection) -> None:
    # A podcasts.db from before the show covers: the image URL last written as the folder's cover.
    if "cover_url" not in {row[1] for row in db.execute("PRAGMA table_info(podcast)")}:
        db.execute("ALTER TABLE podcast ADD COLUMN cover_url TEXT")


class PodcastStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteThread(path, "podcasts")

    async def open(self) -> None:
        await self._db.open(_SCHEMA)
        await self._db.run(lambda db: db.execute("PRAGMA foreign_keys=ON"))
        await self._db.transaction(_add_cover_url)

    async def close(self) -> None:
        await self._db.close()

    async def add(self, row: Mapping[str, Any]) -> bool:
        """Insert a subscription; False when its feed URL (or id) is there already."""

        def work(db: sqlite3.Connection) -> bool:
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            cursor = db.execute(
                f"INSERT OR IGNORE INTO podcast ({names}) VALUES ({marks})", tuple(row.values())
            )
            return cursor.rowcount == 1

        return await self._db.transaction(work)

    async def get(self, podcast_id: str) -> dict[str, Any] | None:
        return await self._db.run(
            lambda db: _one(db.execute("SELECT * FROM podcast WHERE id = ?", (podcast_id,)))
        )

    async def all(self) -> list[dict[str, Any]]:
        return await self._db.run(lambda db: _rows(db.execute("SELECT * FROM podcast ORDER BY title, id")))

    async def update(self, podcast_id: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        def work(db: sqlite3.Connection) -> dict[str, Any] | None:
            if fields:
                sets = ", ".join(f"{name} = ?" for name in fields)
                db.execute(f"UPDATE podcast SET {sets} WHERE id = ?", (*fields.values(), podcast_id))
            return _one(db.execute("SELECT * FROM podcast WHERE id = ?", (podcast_id,)))

        return await self._db.transaction(work)

    async def delete(self, podcast_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM episode WHERE podcast_id = ?", (podcast_id,))
            return db.execute("DELETE FROM podcast WHERE id = ?", (podcast_id,)).rowcount == 1

        return await self._db.transaction(work)

    async def merge_feed(
        self, podcast_id: str, feed: Feed, ids: Sequence[str], now: float, fields: Mapping[str, Any]
    ) -> tuple[float | None, list[str]]:
        """Take the feed's show fields and episodes (new ones inserted, known ones updated, none deleted:
        an episode that left the feed keeps its download and progress) and ``fields`` in one transaction.
        Answers the newest publication date known before, and the ids of the episodes that are new."""

        def work(db: sqlite3.Connection) -> tuple[float | None, list[str]]:
            newest = db.execute(
                "SELECT max(published) FROM episode WHERE podcast_id = ?", (podcast_id,)
            ).fetchone()[0]
            known = {r[0] for r in db.execute("SELECT id FROM episode WHERE podcast_id = ?", (podcast_id,))}
            new: list[str] = []
            for episode_id, e in zip(ids, feed.episodes, strict=True):
                values = (
                    e.title,
                    e.description,
                    e.published,
                    e.duration_seconds,
                    e.enclosure_url,
                    e.enclosure_type,
                    e.enclosure_length,
                    e.season,
                    e.episode,
                    e.image,
                    _chapters_json(e),
                    e.chapters_url,
                )
                if episode_id in known:
                    db.execute(
                        "UPDATE episode SET title=?, description=?, published=?, duration_seconds=?,"
                        " enclosure_url=?, enclosure_type=?, enclosure_length=?, season=?, episode=?,"
                        " image=?, chapters=coalesce(?, chapters), chapters_url=? WHERE id=?",
                        (*values[:10], None if values[10] == b"[]" else values[10], values[11], episode_id),
                    )
                else:
                    db.execute(
                        "INSERT INTO episode (id, podcast_id, guid, title, description, published,"
                        " duration_seconds, enclosure_url, enclosure_type, enclosure_length, season,"
                        " episode, image, chapters, chapters_url, seen_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (episode_id, podcast_id, e.guid, *values, now),
                    )
                    new.append(episode_id)
            show = {
                "title": feed.title,
                "description": feed.description,
                "image": feed.image,
                "link": feed.link,
                **fields,
            }
            sets = ", ".join(f"{name} = ?" for name in show)
            db.execute(f"UPDATE podcast SET {sets} WHERE id = ?", (*show.values(), podcast_id))
            return newest, new

        return await self._db.transaction(work)

    async def episodes(self, podcast_id: str) -> list[dict[str, Any]]:
        return await self._db.run(
            lambda db: _rows(
                db.execute(
                    "SELECT * FROM episode WHERE podcast_id = ?"
                    " ORDER BY published IS NULL, published DESC, seen_at DESC",
                    (podcast_id,),
                )
            )
        )

    async def episode(self, episode_id: str) -> dict[str, Any] | None:
        return await self._db.run(
            lambda db: _one(db.execute("SELECT * FROM episode WHERE id = ?", (episode_id,)))
        )

    async def set_episode(self, episode_id: str, fields: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{name} = ?" for name in fields)
        await self._db.transaction(
            lambda db: db.execute(f"UPDATE episode SET {sets} WHERE id = ?", (*fields.values(), episode_id))
        )

    async def with_download(self, states: Iterable[str]) -> list[dict[str, Any]]:
        wanted = tuple(states)
        marks = ", ".join("?" for _ in wanted)
        return await self._db.run(
            lambda db: _rows(db.execute(f"SELECT * FROM episode WHERE download IN ({marks})", wanted))
        )
