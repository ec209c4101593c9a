"""The catalog: items, their files and chapters, and files that failed, in SQLite (WAL).

Two connections: request handlers read through one (its own lock, ``query_only``), the scanner writes
through the other in batched transactions, so a scan never makes a reader wait for a probe. Items
read by id are cached in memory; the cache is dropped whenever ``PRAGMA data_version`` says another
connection committed (the scanner here, or ``revenge scan`` in another process), so a request never
sees an item older than the last committed scan batch.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from revenge.library.assemble import search_text, sort_key
from revenge.library.catalog_links import Dirty, item_album, link_item, rebuild, unlink_items
from revenge.library.catalog_schema import migrate
from revenge.library.cursors import decode_cursor, encode_cursor
from revenge.library.grouping import fold
from revenge.library.ids import unit_content
from revenge.library.model import ITEM_TYPES, Chapter, Item, ItemType, MediaFile
from revenge.library.probe import EmbeddedChapter, Probe
from revenge.library.tags import Tags, tags_from_json

T = TypeVar("T")

_CACHE_ITEMS = 4096
READ_MMAP_BYTES = 1 << 30
EXTERNAL_CHANGE_CHECK_S = 1.0  # how soon another process's commit (a CLI scan) is seen
MAX_QUERY_WORDS = 8

_ITEM_COLUMNS = "id, type, title, artist, album, album_artist, track_number, disc_number, genre, fingerprint"
_FILE_COLUMNS = ("item_id, path, size, mtime_ns, container, codec, sample_rate, channels, bit_rate, "
                 "sample_count")


@dataclass(frozen=True, slots=True)
class Failure:
    root: str
    relative: str
    type: str
    reason: str
    failed_at: float


def fts_query(text: str) -> str | None:
    """An FTS5 query: every word of ``text`` as a quoted prefix ("beyon" finds "Beyoncé"); None when
    ``text`` holds no word. Quoting keeps FTS5's operators (AND, NEAR, ``*``, ``:``) out of user input;
    words split where the tokenizer splits (``_`` too)."""
    words = re.findall(r"[^\W_]+", fold(text))[:MAX_QUERY_WORDS]
    return " ".join(f'"{word}"*' for word in words) or None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _tags_json(probe: Probe) -> bytes:
    return orjson.dumps(probe.tags.as_json())


def _embedded_json(probe: Probe) -> bytes:
    return orjson.dumps([[c.start_ms, c.end_ms, c.title] for c in probe.chapters])


class Catalog:
    def __init__(self, path: Path, artist_separators: Sequence[str] = ()) -> None:
        self.path = path
        self.artist_separators = tuple(artist_separators)
        self._dirty = Dirty()  # albums, artists, genres to rebuild before the next commit
        self._removed: list[str] = []  # items removed in the open transaction, for the listeners
        self._removal_listeners: list[Callable[[list[str]], None]] = []
        self._write_lock = threading.Lock()
        self._write = _connect(path)
        self._write.execute("PRAGMA journal_mode=WAL")
        self._write.execute("PRAGMA synchronous=NORMAL")
        if migrate(self._write, self.artist_separators):  # an older schema's album rows: rebuilt
            self._write.execute("BEGIN IMMEDIATE")
            rebuild(self._write, Dirty(albums={r[0] for r in self._write.execute("SELECT id FROM albums")}))
            self._write.execute("COMMIT")
        self._in_tx = False
        self._read_lock = threading.Lock()
        self._read = _connect(path)
        self._read.execute("PRAGMA query_only=ON")
        # Pages read through a memory map, not a pread each: a page of 500 tracks by id touches pages
        # all over a large catalog.
        self._read.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
        self._cache: OrderedDict[str, Item] = OrderedDict()
        self._derived: dict[str, Any] = {}  # derived(): dropped with the cache
        self._cache_version = -1
        # Our own commits mark the cache stale at once; another process's (a `revenge scan` beside the
        # server) is noticed within EXTERNAL_CHANGE_CHECK_S: asking SQLite on every lookup costs more
        # than the lookup itself on the hot paths (a progress PUT, a segment request).
        self._cache_stale = True
        self._next_version_check = 0.0
        # One re-probe of a changed item at a time (library/freshness): a second request for the same
        # item waits for the first's result instead of probing the file again.
        self.refresh_lock = threading.Lock()

    def close(self) -> None:
        with self._write_lock:
            if self._in_tx:
                rebuild(self._write, self._dirty)
                self._write.execute("COMMIT")
                self._in_tx = False
            self._write.close()
        with self._read_lock:
            self._read.close()

    # ------------------------------------------------------------------------------------------
    # Reading (request handlers, any thread)

    def _fresh_cache(self) -> None:
        """Drop cached items if anything was committed since they were read. Call with the read lock."""
        now = time.monotonic()
        if not self._cache_stale and now < self._next_version_check:
            return
        self._cache_stale = False
        self._next_version_check = now + EXTERNAL_CHANGE_CHECK_S
        version = int(self._read.execute("PRAGMA data_version").fetchone()[0])
        if version != self._cache_version:
            self._cache.clear()
            self._derived.clear()
            self._cache_version = version

    def derived(self, name: str, build: Callable[[sqlite3.Connection], T]) -> T:
        """``build(db)``'s answer, kept until the catalog changes. Call inside ``reading()``."""
        if name not in self._derived:
            self._derived[name] = build(self._read)
        return self._derived[name]  # type: ignore[no-any-return]

    def get_item(self, item_id: str) -> Item | None:
        with self._read_lock:
            self._fresh_cache()
            item = self._cache.get(item_id)
            if item is not None:
                self._cache.move_to_end(item_id)
                return item
            found = self._load([item_id])
            item = found.get(item_id)
            if item is not None:
                self._remember(item)
            return item

    def track_tags(self, item_id: str) -> Tags | None:
        """The full tags of an item's (first) file, as the scan read them; ``None`` for an unknown item."""
        with self._read_lock:
            row = self._read.execute("SELECT tags FROM files WHERE item_id = ? AND position = 0",
                                     (item_id,)).fetchone()
        return None if row is None else tags_from_json(orjson.loads(row[0]))

    def _remember(self, item: Item) -> None:
        self._cache[item.id] = item
        if len(self._cache) > _CACHE_ITEMS:
            self._cache.popitem(last=False)

    def _load(self, ids: Sequence[str]) -> dict[str, Item]:
        """Items by id with their files and chapters (three queries, whatever the number of ids)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        db = self._read
        files: dict[str, list[MediaFile]] = {}
        for row in db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE item_id IN ({marks}) "
                              "ORDER BY item_id, position", ids):
            files.setdefault(row[0], []).append(MediaFile(*row[1:]))
        chapters: dict[str, list[Chapter]] = {}
        for row in db.execute(f"SELECT item_id, idx, title, start_ms, end_ms FROM chapters "
                              f"WHERE item_id IN ({marks}) ORDER BY item_id, idx", ids):
            chapters.setdefault(row[0], []).append(Chapter(*row[1:]))
        items: dict[str, Item] = {}
        for row in db.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id IN ({marks})", ids):
            item_files = files.get(row[0])
            if not item_files:
                continue  # caught between a scanner's delete and insert of another process: absent
            items[row[0]] = Item(*row[:9], files=tuple(item_files),  # type: ignore[arg-type]
                                 chapters=tuple(chapters.get(row[0], ())), fingerprint=row[9])
        return items

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The read connection, under its lock, its cache fresh (for library/browse's queries)."""
        with self._read_lock:
            self._fresh_cache()
            yield self._read

    def cached_items(self, ids: Sequence[str]) -> dict[str, Item]:
        """Items by id, from the cache or loaded (and cached). Call inside ``reading()``."""
        missing = [i for i in ids if i not in self._cache]
        loaded = self._load(missing)
        found = {i: item for i in ids if (item := self._cache.get(i) or loaded.get(i)) is not None}
        for item in loaded.values():
            self._remember(item)
        return found

    def list_items(self, *, type: ItemType | None = None, q: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[Item], str | None]:
        """One page in the stable listing order, and the cursor of the next page (None at the end).
        Raises CursorError for a cursor this catalog did not make."""
        if type is not None and type not in ITEM_TYPES:
            raise ValueError(f"unknown item type {type!r}")
        where: list[str] = []
        params: list[object] = []
        if type is not None:
            where.append("type = ?")
            params.append(type)
        if q:
            query = fts_query(q)
            if query is None:
                return [], None
            where.append("rowid IN (SELECT rowid FROM search_items WHERE search_items MATCH ?)")
            params.append(query)
        if cursor is not None:
            after_key, after_id = decode_cursor(cursor)
            where.append("(sort_key, id) > (?, ?)")
            params.extend((after_key, after_id))
        sql = "SELECT id, sort_key FROM items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY sort_key, id LIMIT ?"
        params.append(limit + 1)
        with self.reading() as db:
            rows = db.execute(sql, params).fetchall()
            page = rows[:limit]
            found = self.cached_items([r[0] for r in page])
            items = [found[item_id] for item_id, _ in page if item_id in found]
        next_cursor = encode_cursor(page[-1][1], page[-1][0]) if len(rows) > limit and page else None
        return items, next_cursor

    def count_items(self) -> dict[str, int]:
        with self._read_lock:
            rows = self._read.execute("SELECT type, count(*) FROM items GROUP BY type").fetchall()
        counts = dict.fromkeys(ITEM_TYPES, 0)
        counts.update({t: int(n) for t, n in rows})
        return counts

    def failures(self, limit: int = 100) -> tuple[list[Failure], int]:
        """Files (and folders) the last scans could not use, with the reason; and how many there are."""
        with self._read_lock:
            total = int(self._read.execute("SELECT count(*) FROM failures").fetchone()[0])
            rows = self._read.execute(
                "SELECT root, relative, type, reason, failed_at FROM failures "
                "ORDER BY root, relative LIMIT ?",
                (limit,),
            ).fetchall()
        return [Failure(*r) for r in rows], total

    # ------------------------------------------------------------------------------------------
    # Writing (the scanner's thread). Writes join one open transaction until ``commit``.

    def _tx(self) -> sqlite3.Connection:
        if not self._in_tx:
            self._write.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        return self._write

    def on_removed(self, listener: Callable[[list[str]], None]) -> None:
        """Call ``listener(item_ids)`` after each commit that removed items (the art index forgets them),
        whichever path removed them: a scan, a re-probe that found the file gone, the watcher."""
        self._removal_listeners.append(listener)

    def commit(self) -> None:
        with self._write_lock:
            if self._in_tx:
                rebuild(self._write, self._dirty)
                self._write.execute("COMMIT")
                self._in_tx = False
                self._cache_stale = True
            removed, self._removed = self._removed, []
        if removed:
            for listener in self._removal_listeners:
                listener(removed)

    def begin_scan(self) -> int:
        """A new scan generation: everything the scan sees is stamped with it."""
        with self._write_lock:
            db = self._tx()
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'scan_generation'")
            generation = int(db.execute("SELECT value FROM meta WHERE key = 'scan_generation'").fetchone()[0])
            db.execute("COMMIT")
            self._in_tx = False
            self._cache_stale = True
        return generation

    def item_state(self, item_id: str) -> tuple[str, str, int, str] | None:
        """(fingerprint, root, seen_scan, relative) of a stored item."""
        with self._write_lock:
            row = self._write.execute("SELECT fingerprint, root, seen_scan, relative FROM items WHERE id = ?",
                                      (item_id,)).fetchone()
        return (row[0], row[1], int(row[2]), row[3]) if row else None

    def stored_probe(self, path: str, size: int, mtime_ns: int) -> Probe | None:
        """The stored probe of ``path`` if the file is unchanged (same size and mtime)."""
        with self._write_lock:
            row = self._write.execute(
                "SELECT path, size, mtime_ns, container, codec, sample_rate, channels, bit_rate, "
                "sample_count, tags, embedded, content FROM files "
                "WHERE path = ? AND size = ? AND mtime_ns = ?",
                (path, size, mtime_ns),
            ).fetchone()
        if row is None:
            return None
        tags = tags_from_json(orjson.loads(row[9]))
        chapters = tuple(EmbeddedChapter(*c) for c in orjson.loads(row[10]))
        return Probe(MediaFile(*row[:9]), tags, chapters, row[11])

    def known_failure(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The recorded reason if ``path`` failed before and has not changed since."""
        with self._write_lock:
            row = self._write.execute(
                "SELECT reason FROM failures WHERE path = ? AND size = ? AND mtime_ns = ?",
                (path, size, mtime_ns),
            ).fetchone()
        return row[0] if row else None

    def touch_item(self, item_id: str, paths: Sequence[str], generation: int) -> None:
        """Mark an unchanged item (and any recorded failures among its ``paths``) as seen."""
        with self._write_lock:
            db = self._tx()
            db.execute("UPDATE items SET seen_scan = ? WHERE id = ?", (generation, item_id))
            db.executemany("UPDATE failures SET seen_scan = ? WHERE path = ?",
                           [(generation, p) for p in paths])

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The write connection inside the open transaction, under its lock (library/identity)."""
        with self._write_lock:
            yield self._tx()

    def touch_failure(self, path: str, generation: int) -> None:
        with self._write_lock:
            self._tx().execute("UPDATE failures SET seen_scan = ? WHERE path = ?", (generation, path))

    def put_item(self, item: Item, probes: Sequence[Probe], root: str, relative: str,
                 generation: int) -> None:
        """Insert or replace an item with its files (and their probes) and chapters."""
        now = time.time()
        tags = probes[0].tags
        with self._write_lock:
            db = self._tx()
            stored = db.execute("SELECT 1 FROM items WHERE id = ?", (item.id,)).fetchone() is not None
            if stored:  # a new item has no links, files or chapters to clear
                unlink_items(db, [item.id], self._dirty)
                db.execute("DELETE FROM files WHERE item_id = ?", (item.id,))
                db.execute("DELETE FROM chapters WHERE item_id = ?", (item.id,))
            cursor = db.execute(
                "INSERT INTO items(id, type, title, artist, album, album_artist, track_number, disc_number, "
                "genre, fingerprint, root, relative, sort_key, search, seen_scan, updated_at, added_at, "
                "album_id, year, content) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET "
                "type=excluded.type, title=excluded.title, artist=excluded.artist, album=excluded.album, "
                "album_artist=excluded.album_artist, track_number=excluded.track_number, "
                "disc_number=excluded.disc_number, genre=excluded.genre, fingerprint=excluded.fingerprint, "
                "root=excluded.root, relative=excluded.relative, sort_key=excluded.sort_key, "
                "search=excluded.search, seen_scan=excluded.seen_scan, updated_at=excluded.updated_at, "
                "album_id=excluded.album_id, year=excluded.year, content=excluded.content",
                (item.id, item.type, item.title, item.artist, item.album, item.album_artist,
                 item.track_number, item.disc_number, item.genre, item.fingerprint, root, relative,
                 sort_key(item), search_text(item, relative), generation, now, now,
                 item_album(item, tags), tags.year, unit_content(p.content for p in probes)),
            )
            db.executemany(
                "INSERT OR REPLACE INTO files(path, item_id, position, size, mtime_ns, container, codec, "
                "sample_rate, channels, bit_rate, sample_count, tags, embedded, content) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(p.file.path, item.id, i, p.file.size, p.file.mtime_ns, p.file.container, p.file.codec,
                  p.file.sample_rate, p.file.channels, p.file.bit_rate, p.file.sample_count,
                  _tags_json(p), _embedded_json(p), p.content) for i, p in enumerate(probes)],
            )
            db.executemany(
                "INSERT INTO chapters(item_id, idx, title, start_ms, end_ms) VALUES (?,?,?,?,?)",
                [(item.id, c.index, c.title, c.start_ms, c.end_ms) for c in item.chapters],
            )
            db.executemany("DELETE FROM failures WHERE path = ?", [(p.file.path,) for p in probes])
            link_item(db, item, tags, self._dirty, None if stored else cursor.lastrowid)

    def remove_item(self, item_id: str) -> None:
        """Forget one item (its files and chapters go with it)."""
        with self._write_lock:
            db = self._tx()
            unlink_items(db, [item_id], self._dirty)
            if db.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount:
                self._removed.append(item_id)

    def record_failure(self, path: str, root: str, relative: str, item_type: ItemType, size: int | None,
                       mtime_ns: int | None, reason: str, generation: int) -> None:
        with self._write_lock:
            self._tx().execute(
                "INSERT OR REPLACE INTO failures(path, root, relative, type, size, mtime_ns, reason, "
                "failed_at, seen_scan) VALUES (?,?,?,?,?,?,?,?,?)",
                (path, root, relative, item_type, size, mtime_ns, reason, time.time(), generation),
            )

    def remove_unseen(self, generation: int, walked_roots: Iterable[str],
                      configured_roots: Iterable[str]) -> int:
        """Delete items and failures the scan did not see, under roots it walked completely and under
        roots no longer configured (a root that could not be read keeps its items). Returns the
        number of items removed."""
        walked = list(walked_roots)
        configured = list(configured_roots)
        removed = 0
        with self._write_lock:
            db = self._tx()
            for table in ("items", "failures"):
                conditions = []
                params: list[object] = [generation]
                if walked:
                    conditions.append(f"root IN ({','.join('?' * len(walked))})")
                    params.extend(walked)
                if configured:
                    conditions.append(f"root NOT IN ({','.join('?' * len(configured))})")
                    params.extend(configured)
                else:
                    conditions.append("1")
                where = f"seen_scan < ? AND ({' OR '.join(conditions)})"
                if table == "items":
                    gone = [r[0] for r in db.execute(f"SELECT id FROM items WHERE {where}", params)]
                    unlink_items(db, gone, self._dirty)
                    self._removed.extend(gone)
                cur = db.execute(f"DELETE FROM {table} WHERE {where}", params)
                if table == "items":
                    removed = cur.rowcount
        return removed
