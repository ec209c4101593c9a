"""Which picture each item shows, and where each picture's bytes are: ``art.db`` in the data dir.

Its own database, not tables in ``catalog.db``: the catalog rebuilds itself when its schema changes and
is written by the scanner in long transactions; the art index is written once per changed unit and
rebuilt the same way (it mirrors the files).

The scan calls ``index_unit`` for every unit it walks. A unit whose files and folder image have the
size and mtime recorded last time costs a few ``stat`` calls; otherwise its files' tags are read
(mutagen) for embedded pictures. Which wins: a file's own embedded picture (front cover first), then
the folder image of the file's folder (or of the album folder above a ``CD1`` / ``Disc 2`` folder).
Embedded first because it is the most specific: a compilation folder with one ``cover.jpg`` and a cover
in each track keeps each track's own; the folder image covers the tracks that have none.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

from revenge.library.art import art_id_for, chosen_art_id, embedded_pictures, pick_folder_image
from revenge.library.layout import DISC_FOLDER_RE

log = logging.getLogger("revenge.art")

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item_art (
  item_id TEXT PRIMARY KEY,
  art_id TEXT,            -- NULL: the item has no picture (still recorded, so it is not looked at again)
  stamp TEXT NOT NULL     -- the files' and the folder image's (path, size, mtime) it was worked out from
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_art_art ON item_art(art_id);  -- is a picture still shown (forget)
CREATE TABLE IF NOT EXISTS pictures (
  art_id TEXT PRIMARY KEY,
  path TEXT NOT NULL,     -- the audio file whose tags hold it, or the image file
  embedded INTEGER NOT NULL
) WITHOUT ROWID;
"""
MAX_FOLDER_IMAGE_BYTES = 32 * 1024 * 1024
_CHUNK = 500  # ids per IN (...) list


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    return db


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _folder_image(directory: Path) -> Path | None:
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if e.is_file()]
    except OSError:
        return None
    name = pick_folder_image(names)
    return directory / name if name else None


class _FolderImages:
    """``_folder_image`` remembered for the last folder asked about (the scan walks a folder's tracks
    one after another), while the folder's mtime says no entry was added, removed or renamed."""

    def __init__(self) -> None:
        self._last: tuple[Path, int, Path | None] | None = None

    def __call__(self, directory: Path) -> Path | None:
        try:
            mtime = directory.stat().st_mtime_ns
        except OSError:
            return None
        if self._last is not None and self._last[0] == directory and self._last[1] == mtime:
            return self._last[2]
        image = _folder_image(directory)
        self._last = (directory, mtime, image)
        return image


class ArtIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_lock = threading.Lock()
        self._write = _connect(path)
        self._write.execute("PRAGMA journal_mode=WAL")
        self._write.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._read_lock = threading.Lock()
        self._read = _connect(path)
        self._read.execute("PRAGMA query_only=ON")
        self._folder_image = _FolderImages()  # the scanner's thread only

    def _migrate(self) -> None:
        db = self._write
        has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if has_meta else None
        if version is not None and version[0] != SCHEMA_VERSION:
            db.executescript("DROP TABLE IF EXISTS item_art; DROP TABLE IF EXISTS pictures; DROP TABLE meta;")
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        with self._write_lock:
            self._write.close()
        with self._read_lock:
            self._read.close()

    # Reading (request handlers)

    def art_id(self, item_id: str) -> str | None:
        with self._read_lock:
            row = self._read.execute("SELECT art_id FROM item_art WHERE item_id = ?", (item_id,)).fetchone()
        return row[0] if row else None

    def art_ids(self, item_ids: list[str]) -> dict[str, str]:
        if not item_ids:
            return {}
        marks = ",".join("?" * len(item_ids))
        with self._read_lock:
            rows = self._read.execute(f"SELECT item_id, art_id FROM item_art WHERE item_id IN ({marks}) "
                                      "AND art_id IS NOT NULL", item_ids).fetchall()
        return dict(rows)

    def source(self, art_id: str) -> tuple[str, bool] | None:
        """(path, embedded) of a picture: an audio file whose tags hold it, or an image file."""
        with self._read_lock:
            row = self._read.execute("SELECT path, embedded FROM pictures WHERE art_id = ?",
                                     (art_id,)).fetchone()
        return (row[0], bool(row[1])) if row else None

    # Writing (the scanner's thread)

    def index_unit(self, uid: str, files: tuple[Path, ...] | list[Path],
                   embedded_art: Mapping[str, str | None] | None = None) -> None:
        """Bring item ``uid``'s picture up to date with its files (the scan's hook, see the module).
        ``embedded_art``: the art id (or None) of files whose tags the scan has just read, by path;
        those are not parsed again."""
        try:
            self._index(uid, list(files), embedded_art or {})
        except Exception:  # art must never fail a scan
            log.exception("cover art of %s not indexed", files[0] if files else uid)

    def _index(self, uid: str, files: list[Path], known: Mapping[str, str | None]) -> None:
        if not files:
            return
        folder = files[0].parent
        image = self._folder_image(folder)
        if image is None and DISC_FOLDER_RE.fullmatch(folder.name.strip()):
            image = _folder_image(folder.parent)
        stamp_parts = [f"{p}\x00{_stat(p)}" for p in files]
        image_stat = _stat(image) if image is not None else None
        stamp_parts.append(f"{image}\x00{image_stat}")
        stamp = hashlib.sha256("\x01".join(stamp_parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        with self._write_lock:
            row = self._write.execute("SELECT stamp FROM item_art WHERE item_id = ?", (uid,)).fetchone()
        if row is not None and row[0] == stamp:
            return
        found = self._embedded(files, known)
        if found is None and image is not None and image_stat is not None \
                and image_stat[0] <= MAX_FOLDER_IMAGE_BYTES:
            try:
                found = (art_id_for(image.read_bytes()), str(image), False)
            except OSError:
                found = None
        with self._write_lock:
            db = self._write
            db.execute("BEGIN IMMEDIATE")
            try:
                if found is not None:
                    db.execute("INSERT OR REPLACE INTO pictures(art_id, path, embedded) VALUES (?, ?, ?)",
                               (found[0], found[1], int(found[2])))
                db.execute("INSERT OR REPLACE INTO item_art(item_id, art_id, stamp) VALUES (?, ?, ?)",
                           (uid, found[0] if found else None, stamp))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def forget(self, item_ids: list[str]) -> None:
        """Drop the rows of items gone from the catalog (``Catalog.on_removed``), and the pictures no
        item shows any more."""
        try:
            with self._write_lock:
                db = self._write
                db.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(item_ids), _CHUNK):
                        chunk = item_ids[start:start + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        gone = [r[0] for r in db.execute(
                            f"DELETE FROM item_art WHERE item_id IN ({marks}) AND art_id IS NOT NULL "
                            "RETURNING art_id", chunk)]
                        db.execute(f"DELETE FROM item_art WHERE item_id IN ({marks})", chunk)
                        for art_id in set(gone):
                            db.execute("DELETE FROM pictures WHERE art_id = ? AND NOT EXISTS "
                                       "(SELECT 1 FROM item_art WHERE art_id = ?)", (art_id, art_id))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except Exception:  # like indexing, forgetting must never fail a scan
            log.exception("cover art of %d removed items not forgotten", len(item_ids))

    @staticmethod
    def _embedded(files: list[Path], known: Mapping[str, str | None]) -> tuple[str, str, bool] | None:
        for path in files:  # a book: the first of its files that has a picture
            art_id = known[str(path)] if str(path) in known else chosen_art_id(embedded_pictures(path))
            if art_id is not None:
                return art_id, str(path), True
        return None
