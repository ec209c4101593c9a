"""Resized cover art on disk: ``data_dir/art-cache/{art_id}-{size}.{jpeg|webp}``, bounded in bytes.

A picture is resized once per (size, format) and kept; the least recently served file goes first when
the cache passes its budget. The recency order lives in memory (no write per hit); after a restart it
starts from the files' modification times. Files are written to a temporary name and renamed into
place, so a reader never sees half a picture and a crash leaves at most a ``.tmp`` (swept at start).
Names are built only from a validated art id, a size of ``ART_SIZES`` and a format of ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

from revenge.library.art import (
    ART_SIZES,
    MEDIA_TYPES,
    ArtError,
    ArtFormat,
    art_id_for,
    choose_picture,
    embedded_pictures,
    is_art_id,
    render,
)
from revenge.library.art_index import MAX_FOLDER_IMAGE_BYTES, ArtIndex

log = logging.getLogger("revenge.art")

_NAME_RE = re.compile(r"([a-z2-7]{24})-(\d{2,4})\.(jpeg|webp)")
_KEY_LOCKS = 64  # striped locks: two requests for the same missing thumbnail resize it once
RESIZE_THREADS = 2  # resizes at once (CPU bound; the rest wait for a turn)


class ArtMissing(Exception):
    """No picture of this id is known (or its source no longer holds it)."""


def cache_name(art_id: str, size: int, fmt: ArtFormat) -> str:
    if not is_art_id(art_id) or size not in ART_SIZES or fmt not in MEDIA_TYPES:
        raise ValueError("not a cache key")  # callers validate first; this is the last line of defence
    return f"{art_id}-{size}.{fmt}"


def load_original(index: ArtIndex, art_id: str) -> bytes:
    """The original bytes of picture ``art_id``, read again from its source and checked against the
    id (a file changed since the scan no longer holds this picture). Raises ``ArtMissing``."""
    source = index.source(art_id)
    if source is None:
        raise ArtMissing(art_id)
    path, embedded = source
    data: bytes | None = None
    if embedded:
        picture = choose_picture(embedded_pictures(path))
        data = picture.data if picture is not None else None
    else:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FOLDER_IMAGE_BYTES + 1)
        except OSError:
            data = None
    if data is None or art_id_for(data) != art_id:
        raise ArtMissing(art_id)
    return data


class ArtCache:
    def __init__(self, directory: Path, limit_bytes: int, index: ArtIndex) -> None:
        self.directory = directory
        self.limit_bytes = limit_bytes
        self.index = index
        self._lock = threading.Lock()
        self._files: OrderedDict[str, int] = OrderedDict()  # name → bytes, least recently used first
        self._bytes = 0
        self._key_locks = [threading.Lock() for _ in range(_KEY_LOCKS)]
        self._resizes = threading.Semaphore(RESIZE_THREADS)
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        found: list[tuple[int, str, int]] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                elif _NAME_RE.fullmatch(entry.name):
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        found.append((st.st_mtime_ns, entry.name, st.st_size))
        for _, name, size in sorted(found):
            self._files[name] = size
            self._bytes += size
        self._evict()

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def cached(self, art_id: str, size: int, fmt: ArtFormat) -> Path | None:
        """The cached file of this picture at this size and format, marked as just used; None if absent."""
        name = cache_name(art_id, size, fmt)
        with self._lock:
            if name not in self._files:
                return None
            self._files.move_to_end(name)
        return self.directory / name

    def forget(self, art_id: str, size: int, fmt: ArtFormat) -> None:
        """Drop an entry whose file went away under us (deleted by hand)."""
        name = cache_name(art_id, size, fmt)
        with self._lock:
            length = self._files.pop(name, None)
            if length is not None:
                self._bytes -= length

    def make(self, art_id: str, size: int, fmt: ArtFormat) -> bytes:
        """Resize picture ``art_id`` (blocking: run it in a thread), keep it, and answer its bytes.
        Raises ``ArtMissing`` for an unknown picture and ``ArtError`` for one that does not decode."""
        name = cache_name(art_id, size, fmt)
        with self._key_locks[hash(name) % _KEY_LOCKS]:
            with self._lock:
                done = name in self._files
            if done:  # made by the request we waited for
                with contextlib.suppress(OSError), open(self.directory / name, "rb") as f:
                    return f.read()
            with self._resizes:
                data = render(load_original(self.index, art_id), size, fmt)
            return self._keep(name, data)

    def _keep(self, name: str, data: bytes) -> bytes:
        target = self.directory / name
        temporary = self.directory / f"{name}.{threading.get_ident()}.tmp"
        try:
            with open(temporary, "wb") as f:
                f.write(data)
            os.replace(temporary, target)
        except OSError as exc:  # a full disk: serve this one anyway, keep nothing
            log.warning("cannot keep resized art %s: %s", name, exc)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return data
        with self._lock:
            previous = self._files.pop(name, None)
            if previous is not None:
                self._bytes -= previous
            self._files[name] = len(data)
            self._bytes += len(data)
            self._evict()
        return data

    def _evict(self) -> None:
        while self._bytes > self.limit_bytes and len(self._files) > 1:
            name, length = self._files.popitem(last=False)
            self._bytes -= length
            with contextlib.suppress(OSError):
                os.unlink(self.directory / name)


__all__ = ["ArtCache", "ArtError", "ArtMissing", "cache_name", "load_original"]
