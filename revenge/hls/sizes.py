"""The sizes of the segments each rendition has had encoded: what a variant's declared bandwidth is
measured from (``hls.bandwidth``).

A segment is byte-identical whoever encodes it and whenever, so its size is a fact about (item,
fingerprint, rendition) that never goes stale: a changed file has a new fingerprint. Sizes are kept
in memory for the most recently used renditions and, with a database, on disk (``segment-sizes.db``
under the data dir): a rendition once listened to through declares exact values after a restart too.
Losing the file loses nothing but precision, so a database that fails is logged and left alone.
"""

from __future__ import annotations

import logging
from array import array
from collections import OrderedDict
from typing import NamedTuple

from revenge.errors import StoreUnavailable
from revenge.sqlite_thread import SqliteThread

log = logging.getLogger("revenge.hls")

SCHEMA = """
CREATE TABLE IF NOT EXISTS segment_sizes (
  item_id TEXT NOT NULL,
  rendition TEXT NOT NULL,   -- the profile, plus its gain (Rendition.key_name)
  fingerprint TEXT NOT NULL, -- of the item's files when measured: another is another file
  sizes BLOB NOT NULL,       -- uint32 per segment, in order; 0 = not encoded yet
  PRIMARY KEY (item_id, rendition)
) WITHOUT ROWID;
"""
# A rendition still being listened to is written again after this many more segments (a restart
# loses at most these); a complete one at once.
SAVE_EVERY = 32


class RenditionKey(NamedTuple):
    item_id: str
    fingerprint: str
    rendition: str


class _Sizes:
    __slots__ = ("known", "sizes", "unsaved")

    def __init__(self, sizes: array[int]) -> None:
        self.sizes = sizes
        self.known = sum(1 for s in sizes if s)
        self.unsaved = 0


class SegmentSizes:
    """Sizes by rendition, the ``kept`` most recently used in memory. Used from the event loop only;
    the database has its own thread."""

    def __init__(self, db: SqliteThread | None, kept: int = 4096) -> None:
        self._db = db
        self._kept = kept
        self._entries: OrderedDict[RenditionKey, _Sizes] = OrderedDict()
        self._opened = False

    async def _database(self) -> SqliteThread | None:
        if self._db is not None and not self._opened:
            self._opened = True
            try:
                await self._db.open(SCHEMA)
            except StoreUnavailable as exc:
                log.warning("segment sizes are kept in memory only: %s", exc)
                self._db = None
        return self._db

    async def load(self, key: RenditionKey, count: int) -> None:
        """Make ``key``'s sizes (``count`` segments) known in memory, from the database if it has them."""
        entry = self._entries.get(key)
        if entry is not None and len(entry.sizes) == count:
            self._entries.move_to_end(key)
            return
        sizes = array("I", bytes(4 * count))
        db = await self._database()
        if db is not None:
            try:
                row = await db.run(lambda c: c.execute(
                    "SELECT fingerprint, sizes FROM segment_sizes WHERE item_id = ? AND rendition = ?",
                    (key.item_id, key.rendition)).fetchone())
            except StoreUnavailable as exc:
                log.warning("segment sizes of %s not read: %s", key.item_id, exc)
                row = None
            if row is not None and row[0] == key.fingerprint and len(row[1]) == 4 * count:
                sizes = array("I", row[1])
        await self._put(key, _Sizes(sizes))

    def sizes(self, key: RenditionKey) -> array[int] | None:
        entry = self._entries.get(key)
        return entry.sizes if entry is not None else None

    def known(self, key: RenditionKey) -> int:
        """How many of ``key``'s segments have a size (0 when it is not in memory)."""
        entry = self._entries.get(key)
        return entry.known if entry is not None else 0

    def add(self, key: RenditionKey, index: int, size: int) -> bool:
        """Record segment ``index``'s size. True when the rendition should be saved now (it just
        became complete, or gained :data:`SAVE_EVERY` sizes since its last save)."""
        entry = self._entries.get(key)
        if entry is None or not 0 <= index < len(entry.sizes) or entry.sizes[index] == size:
            return False
        if not entry.sizes[index]:
            entry.known += 1
        entry.sizes[index] = size
        entry.unsaved += 1
        return entry.known == len(entry.sizes) or entry.unsaved >= SAVE_EVERY

    async def save(self, key: RenditionKey) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.unsaved:
            await self._write(key, entry)

    async def _put(self, key: RenditionKey, entry: _Sizes) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._kept:
            old_key, old = self._entries.popitem(last=False)
            if old.unsaved:
                await self._write(old_key, old)

    async def _write(self, key: RenditionKey, entry: _Sizes) -> None:
        db = await self._database()
        if db is None:
            return
        blob = entry.sizes.tobytes()
        entry.unsaved = 0
        try:
            await db.run(lambda c: c.execute(
                "INSERT OR REPLACE INTO segment_sizes (item_id, rendition, fingerprint, sizes) "
                "VALUES (?, ?, ?, ?)", (key.item_id, key.rendition, key.fingerprint, blob)))
        except StoreUnavailable as exc:
            log.warning("segment sizes of %s not saved: %s", key.item_id, exc)

    async def close(self) -> None:
        """Save what is not saved yet and close the database."""
        for key, entry in list(self._entries.items()):
            if entry.unsaved:
                await self._write(key, entry)
        if self._db is not None and self._opened:
            await self._db.close()
