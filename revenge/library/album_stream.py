"""An album as one gapless timeline: its tracks' files in disc and track order, played as one item.

Books already stream as one HLS timeline across files; an album does the same through
:func:`album_item` (a synthetic :class:`Item` whose files are the tracks', in order, so the HLS
engine plans, resamples and caches it like a book). Track boundaries are its chapters, and
:func:`locate` maps a position on the album timeline back to (track, offset) so progress lands on
the track. Pure, except :func:`album_tracks`, which reads the catalog.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from revenge.library.catalog import Catalog
from revenge.library.model import Chapter, Item

MAX_ALBUM_TRACKS = 500  # a box set streams as one timeline up to this many tracks


@dataclass(frozen=True, slots=True)
class TrackSpan:
    """One track on the album timeline, in ms."""

    item_id: str
    title: str
    start_ms: int
    end_ms: int


def album_tracks(catalog: Catalog, album_id: str) -> list[Item]:
    """The album's tracks in disc and track order (the album page's order); [] for no such album."""
    with catalog.reading() as db:
        ids = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE album_id = ? ORDER BY coalesce(disc_number, 1), "
            "coalesce(track_number, 0), sort_key, id LIMIT ?", (album_id, MAX_ALBUM_TRACKS))]
        items = catalog.cached_items(ids)
    return [items[i] for i in ids if i in items]


def spans(tracks: Sequence[Item]) -> list[TrackSpan]:
    """Each track's [start, end) on the album timeline. Positions are counted in samples at the
    first track's rate (as the timeline is, each track rescaled to it) and rounded down to ms, so
    consecutive spans meet exactly."""
    if not tracks:
        return []
    rate = tracks[0].sample_rate
    out, at = [], 0
    for track in tracks:
        samples = sum(-(-f.sample_count * rate // f.sample_rate) for f in track.files)
        out.append(TrackSpan(track.id, track.title, at * 1000 // rate, (at + samples) * 1000 // rate))
        at += samples
    return out


def album_item(album_id: str, title: str, tracks: Sequence[Item]) -> Item:
    """The album as one item: every track's files in order, a chapter per track, and a fingerprint
    that changes when any track's does (or the track list does)."""
    if not tracks:
        raise ValueError("an album needs at least one track")
    digest = hashlib.sha256()
    for track in tracks:
        digest.update(f"{track.id}:{track.fingerprint};".encode())
    chapters = tuple(Chapter(i, s.title, s.start_ms, s.end_ms) for i, s in enumerate(spans(tracks)))
    first = tracks[0]
    return Item(album_id, "track", title, first.album_artist or first.artist, first.album,
                first.album_artist, None, None, first.genre,
                tuple(f for t in tracks for f in t.files), chapters, digest.hexdigest()[:32])


def locate(track_spans: Sequence[TrackSpan], position_ms: int) -> tuple[str, int]:
    """(track id, offset in ms within it) of a position on the album timeline. Before the start is
    the first track's 0; at or past the end, the last track's end."""
    if not track_spans:
        raise ValueError("no tracks")
    if position_ms <= 0:
        return track_spans[0].item_id, 0
    lo, hi = 0, len(track_spans) - 1
    while lo < hi:  # the last span starting at or before the position
        mid = (lo + hi + 1) // 2
        if track_spans[mid].start_ms <= position_ms:
            lo = mid
        else:
            hi = mid - 1
    span = track_spans[lo]
    return span.item_id, min(position_ms, span.end_ms) - span.start_ms
