"""The library by offset, for APIs that page that way (OpenSubsonic's ``offset``/``size``): albums in
a sort, tracks in listing order or of a genre, random tracks, artists. ``browse`` pages by keyset
cursor; this reuses its row builders and sort keys so an album or a track reads the same either way.
"""

from __future__ import annotations

import sqlite3

from revenge.library.browse import (
    _ALBUM_COLUMNS,
    _ALBUM_KEYS,
    _ARTIST_COLUMNS,
    MAX_RELATED,
    Album,
    AlbumSort,
    Artist,
    Track,
    _albums,
    _tracks,
    album_filters,
    genre_id_of,
)
from revenge.library.catalog import Catalog
from revenge.library.track_summary import TrackSummary, summaries

MAX_PAGE = 500


def albums_at(catalog: Catalog, *, sort: AlbumSort = "alphabetical", offset: int = 0, size: int = 10,
              genre: str | None = None, year_from: int | None = None, year_to: int | None = None,
              seed: int = 0, descending: bool = False) -> list[Album]:
    """Albums ``offset`` to ``offset + size`` in ``sort`` (``random`` with ``seed``: one shuffle)."""
    keys = [k.format(seed=seed) for k in _ALBUM_KEYS[sort]] + ["id"]
    where, params = album_filters(genre, year_from, year_to)
    sql = f"SELECT {_ALBUM_COLUMNS} FROM albums"
    if where:
        sql += " WHERE " + " AND ".join(where)
    direction = " DESC" if descending else ""
    sql += " ORDER BY " + ", ".join(k + direction for k in keys) + " LIMIT ? OFFSET ?"
    params.extend((min(size, MAX_PAGE), offset))
    with catalog.reading() as db:
        return _albums(db, db.execute(sql, params).fetchall())


def artists_at(catalog: Catalog, offset: int = 0, size: int = 20) -> list[Artist]:
    with catalog.reading() as db:
        rows = db.execute(f"SELECT {_ARTIST_COLUMNS} FROM artists ORDER BY sort_key, id LIMIT ? OFFSET ?",
                          (min(size, MAX_PAGE), offset)).fetchall()
    return [Artist(*r) for r in rows]


ANCHOR_EVERY = 1024


def _track_anchors(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """The (sort key, id) of every ``ANCHOR_EVERY``-th track in listing order, so that a page deep into
    200 000 tracks skips at most that many rows, not all before it. Stepping through the covering index
    with OFFSET walks it once, inside SQLite."""
    anchors: list[tuple[str, str]] = []
    row = db.execute("SELECT sort_key, id FROM items WHERE type = 'track' ORDER BY sort_key, id "
                     "LIMIT 1").fetchone()
    while row is not None:
        anchors.append((row[0], row[1]))
        row = db.execute("SELECT sort_key, id FROM items WHERE type = 'track' AND (sort_key, id) > (?, ?) "
                         "ORDER BY sort_key, id LIMIT 1 OFFSET ?", (*row, ANCHOR_EVERY - 1)).fetchone()
    return anchors


def summaries_at(catalog: Catalog, offset: int = 0, size: int = 20,
                 genre: str | None = None) -> list[TrackSummary]:
    """Music tracks in listing order (of one genre: an id or a name)."""
    size = min(size, MAX_PAGE)
    with catalog.reading() as db:
        if genre is not None:
            return summaries(db, "JOIN item_genres g ON g.item_id = i.id WHERE g.genre_id = ? "
                                 "ORDER BY i.sort_key, i.id LIMIT ? OFFSET ?",
                             (genre_id_of(genre), size, offset))
        anchors = catalog.derived("track_anchors", _track_anchors)
        slot = offset // ANCHOR_EVERY
        if slot >= len(anchors):
            return []
        return summaries(db, "WHERE i.type = 'track' AND (i.sort_key, i.id) >= (?, ?) "
                             "ORDER BY i.sort_key, i.id LIMIT ? OFFSET ?",
                         (*anchors[slot], size, offset - slot * ANCHOR_EVERY))


def random_tracks(catalog: Catalog, size: int = 10, genre: str | None = None,
                  year_from: int | None = None, year_to: int | None = None) -> list[Track]:
    where = ["i.type = 'track'"]
    params: list[object] = []
    if genre is not None:
        where.append("i.id IN (SELECT item_id FROM item_genres WHERE genre_id = ?)")
        params.append(genre_id_of(genre))
    if year_from is not None:
        where.append("i.year >= ?")
        params.append(year_from)
    if year_to is not None:
        where.append("i.year <= ?")
        params.append(year_to)
    sql = f"SELECT i.id FROM items i WHERE {' AND '.join(where)} ORDER BY random() LIMIT ?"
    with catalog.reading() as db:
        ids = [r[0] for r in db.execute(sql, [*params, min(size, MAX_PAGE)])]
        return _tracks(catalog, db, ids)


def tracks_by_id(catalog: Catalog, ids: list[str]) -> list[Track]:
    """Tracks by id in the order given (unknown ids left out)."""
    with catalog.reading() as db:
        return _tracks(catalog, db, ids[:MAX_RELATED])
