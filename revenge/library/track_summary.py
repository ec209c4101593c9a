"""``TrackSummary``: what a listing shows of a track, as plain values.

A client syncing a whole library (OpenSubsonic ``search3`` with an empty query, 500 songs a page) reads
every track once; building an ``Item`` with its files, and ``Tags`` with every field, per track cost
more than the rest of the answer. ``summaries_at`` reads a page of them in one query over the listing
index; ``summary_of`` makes the same summary from the objects other lookups already hold, so an answer
reads the same either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from revenge.library.browse import Ref, Track
from revenge.library.grouping import album_id as album_id_of
from revenge.library.grouping import track_artists
from revenge.library.model import Item, bit_rate_of, duration_ms_of
from revenge.library.tags import Tags


class TrackSummary(NamedTuple):
    id: str
    type: str
    title: str
    artist: str | None
    album: str | None
    album_artist: str | None
    track_number: int | None
    disc_number: int | None
    genre: str | None
    album_id: str | None
    artists: tuple[Ref, ...]
    path: str  # the first file's
    container: str
    codec: str
    size: int  # of every file
    duration_ms: int
    bit_rate: int
    sample_rate: int
    channels: int
    # From the tags:
    year: int | None
    bpm: float | None
    comment: str | None
    title_sort: str | None
    mb_recording_id: str | None
    genres: tuple[str, ...]
    rg_track_gain: float | None
    rg_track_peak: float | None
    rg_album_gain: float | None
    rg_album_peak: float | None


def summary_of(item: Item, tags: Tags, album_id: str | None = None,
               artists: tuple[Ref, ...] | None = None) -> TrackSummary:
    """The summary of an item (a track, episode or book) and its first file's tags; the album and
    artists as the catalog linked them, else as the tags say."""
    if album_id is None and item.type == "track":
        album_id = album_id_of(tags)
    if artists is None:
        artists = tuple(Ref(a.id, a.name) for a in track_artists(tags))
    file = item.first
    return TrackSummary(
        item.id, item.type, item.title, item.artist, item.album, item.album_artist, item.track_number,
        item.disc_number, item.genre, album_id, artists, file.path, file.container, file.codec,
        sum(f.size for f in item.files), item.duration_ms, item.bit_rate, item.sample_rate, item.channels,
        tags.year, tags.bpm, tags.comment, tags.title_sort, tags.mb_recording_id, tags.genres,
        tags.rg_track_gain, tags.rg_track_peak, tags.rg_album_gain, tags.rg_album_peak)


def summary_of_track(track: Track) -> TrackSummary:
    return summary_of(track.item, track.tags, track.album_id, track.artists)


# One row per track: its one file (tracks have one; books, with several, are not listed this way) and
# its track artists in order, as a JSON array of [id, name] (any character a tag holds survives).
_SUMMARY_SQL = (
    "SELECT i.id, i.type, i.title, i.artist, i.album, i.album_artist, i.track_number, i.disc_number, "
    "i.genre, i.album_id, f.path, f.container, f.codec, f.size, f.sample_rate, f.channels, "
    "f.sample_count, f.tags, "
    "(SELECT json_group_array(json_array(a.artist_id, a.name)) FROM "
    " (SELECT artist_id, name FROM item_artists WHERE item_id = i.id AND role = 'track' "
    "  ORDER BY position) AS a) "
    "FROM items i JOIN files f ON f.item_id = i.id AND f.position = 0 ")


def _artists(joined: str | None) -> tuple[Ref, ...]:
    return tuple(Ref(artist_id, name) for artist_id, name in orjson.loads(joined)) if joined else ()


def _summary(row: Sequence[Any]) -> TrackSummary:
    (item_id, type_, title, artist, album, album_artist, track_number, disc_number, genre, album_id,
     path, container, codec, size, rate, channels, samples, raw_tags, artists) = row
    tags: Mapping[str, Any] = orjson.loads(raw_tags)
    bpm = tags.get("bpm")
    return TrackSummary(
        item_id, type_, title, artist, album, album_artist, track_number, disc_number, genre, album_id,
        _artists(artists), path, container, codec, size, duration_ms_of(samples, rate),
        bit_rate_of(size, samples, rate), rate, channels, tags.get("year"),
        bpm, tags.get("comment"), tags.get("title_sort"), tags.get("mb_recording_id"),
        tuple(tags.get("genres") or ()), tags.get("rg_track_gain"), tags.get("rg_track_peak"),
        tags.get("rg_album_gain"), tags.get("rg_album_peak"))


def summaries(db: sqlite3.Connection, rest: str, params: Sequence[Any]) -> list[TrackSummary]:
    """The tracks ``rest`` selects (joins and conditions on ``i``, the items row, with ORDER BY and
    LIMIT), summarised."""
    return [_summary(row) for row in db.execute(_SUMMARY_SQL + rest, params)]
