"""Probed files → one catalog ``Item`` (titles, chapters, sort and search text). Pure functions."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath

from revenge.library.ids import fingerprint, item_id, natural_text
from revenge.library.model import Chapter, Item, ItemType, MediaFile
from revenge.library.probe import EmbeddedChapter, Probe

_TYPE_ORDER = {"audiobook": "1", "episode": "2", "track": "3"}
_FIELD_SEP = "\x1f"


def samples_on_timeline(file: MediaFile, rate: int) -> int:
    """A file's length on an item timeline at ``rate`` (the same rescaling as ``Item.sample_count``)."""
    return file.sample_count if file.sample_rate == rate else file.sample_count * rate // file.sample_rate


def build_chapters(parts: Sequence[tuple[int, str, Sequence[EmbeddedChapter]]], rate: int,
                   *, one_per_part: bool) -> tuple[Chapter, ...]:
    """Chapters on the concatenated timeline of ``parts`` = (samples at ``rate``, fallback title,
    the part's embedded chapters). A part with embedded chapters contributes them (shifted to where
    the part starts); a part without contributes one chapter spanning it when ``one_per_part``.
    Chapters are made contiguous within each part (first starts at the part's start, each ends
    where the next begins, the last ends at the part's end), so every position has a chapter."""
    spans: list[tuple[int, int, str]] = []
    offset = 0
    for samples, fallback_title, embedded in parts:
        part_start = offset * 1000 // rate
        part_end = (offset + samples) * 1000 // rate
        offset += samples
        if embedded:
            starts = [min(part_start + c.start_ms, part_end) for c in embedded]
            starts[0] = part_start
            ends = [*starts[1:], part_end]
            for c, start, end in zip(embedded, starts, ends, strict=True):
                if end > start:
                    spans.append((start, end, c.title or ""))
        elif one_per_part and part_end > part_start:
            spans.append((part_start, part_end, fallback_title))
    return tuple(
        Chapter(index=i, title=title or f"Chapter {i + 1}", start_ms=start, end_ms=end)
        for i, (start, end, title) in enumerate(spans)
    )


def _stem(relative: str) -> str:
    return PurePosixPath(relative).stem if relative else ""


def _parent_name(relative: str) -> str | None:
    parent = PurePosixPath(relative).parent.name
    return parent or None


def _part_title(probe: Probe) -> str:
    return probe.tags.title or PurePosixPath(probe.file.path).stem


def build_item(item_type: ItemType, relative: str, probes: Sequence[Probe], *, folder_book: bool,
               file_fingerprint: str | None = None) -> Item:
    """The item for one unit of the library layout. ``probes`` are its readable files in play order
    (at least one). ``file_fingerprint`` defaults to the fingerprint of the probed files; the scanner
    passes the one over every file of the unit, unreadable ones included."""
    if not probes:
        raise ValueError("an item needs at least one readable file")
    first = probes[0]
    tags = first.tags
    files = tuple(p.file for p in probes)
    rate = files[0].sample_rate
    if file_fingerprint is None:
        file_fingerprint = fingerprint((f.path, f.size, f.mtime_ns) for f in files)
    folder_name = PurePosixPath(relative).name if relative else ""
    if item_type == "audiobook":
        title = tags.album or (folder_name if folder_book else None) or tags.title or _stem(relative)
        parts = [(samples_on_timeline(p.file, rate), _part_title(p), p.chapters) for p in probes]
        return Item(
            id=item_id(item_type, relative),
            type=item_type,
            title=title,
            artist=tags.album_artist or tags.artist,
            album=None,
            album_artist=tags.album_artist,
            track_number=None,
            disc_number=None,
            genre=tags.genre,
            files=files,
            chapters=build_chapters(parts, rate, one_per_part=True),
            fingerprint=file_fingerprint,
        )
    # Tracks and episodes are single files; podcasts keep their show in the folder name.
    album = tags.album or (_parent_name(relative) if item_type == "episode" else None)
    embedded = [(samples_on_timeline(first.file, rate), _part_title(first), first.chapters)]
    return Item(
        id=item_id(item_type, relative),
        type=item_type,
        title=tags.title or _stem(relative),
        artist=tags.artist,
        album=album,
        album_artist=tags.album_artist,
        track_number=tags.track_number,
        disc_number=tags.disc_number,
        genre=tags.genre,
        files=files,
        chapters=build_chapters(embedded, rate, one_per_part=False),
        fingerprint=file_fingerprint,
    )


def sort_key(item: Item) -> str:
    """Stable listing order as one string: type, then author/artist, album, disc, track, title
    (natural order, case-insensitive). The item id breaks the remaining ties."""
    if item.type == "track":
        fields = [item.album_artist or item.artist or "", item.album or "",
                  f"{item.disc_number or 0:04d}", f"{item.track_number or 0:06d}", item.title]
    elif item.type == "episode":
        fields = [item.album or "", item.title]
    else:
        fields = [item.artist or "", item.title]
    return _TYPE_ORDER[item.type] + _FIELD_SEP + _FIELD_SEP.join(natural_text(f) for f in fields)


def normalize_query_text(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def search_text(item: Item, relative: str) -> str:
    """What a text query matches against: the names a user would type, and the file's path."""
    fields = [item.title, item.artist, item.album, item.album_artist, item.genre, relative]
    return "\n".join(normalize_query_text(f) for f in fields if f)
