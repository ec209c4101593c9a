"""The derived half of the catalog (the scanner's write connection only): a stored track's links to its
artists and genres, every item's search row, and the album, artist and genre rows rebuilt from their items.

``link_item`` and ``unlink_items`` name the albums, artists and genres they touched in a ``Dirty``;
``rebuild`` then recomputes exactly those rows, once per commit, so a batch of 200 tracks of one album
rebuilds that album once and a rescan that changes nothing rebuilds nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from revenge.library.catalog_schema import shuffle_key
from revenge.library.grouping import (
    AlbumSummary,
    album_artists,
    album_id,
    genre_ref,
    summarize_album,
    track_artists,
)
from revenge.library.ids import natural_text
from revenge.library.model import Item
from revenge.library.tags import Tags, tags_from_json

_CHUNK = 500  # ids per IN (...) list
# An album's album artists and genres, by the rows of artists and genres (rebuilt before the albums).
_ALBUM_REFS = (
    ("artist", "SELECT a.artist_id, ar.name FROM items i JOIN item_artists a ON a.item_id = i.id "
               "AND a.role = 'album' JOIN artists ar ON ar.id = a.artist_id WHERE i.album_id = ? "
               "ORDER BY i.disc_number, i.track_number, a.position"),
    ("genre", "SELECT g.genre_id, gg.name FROM items i JOIN item_genres g ON g.item_id = i.id "
              "JOIN genres gg ON gg.id = g.genre_id WHERE i.album_id = ? "
              "ORDER BY i.disc_number, i.track_number, g.position"),
)


@dataclass
class Dirty:
    albums: set[str] = field(default_factory=set)
    artists: set[str] = field(default_factory=set)
    genres: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.albums or self.artists or self.genres)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def item_album(item: Item, tags: Tags) -> str | None:
    return album_id(tags) if item.type == "track" else None


def _mark_links(db: sqlite3.Connection, item_ids: Sequence[str], dirty: Dirty) -> None:
    for chunk in _chunks(item_ids):
        marks = _marks(chunk)
        dirty.albums.update(r[0] for r in db.execute(
            f"SELECT album_id FROM items WHERE id IN ({marks}) AND album_id IS NOT NULL", chunk))
        dirty.artists.update(r[0] for r in db.execute(
            f"SELECT artist_id FROM item_artists WHERE item_id IN ({marks})", chunk))
        dirty.genres.update(r[0] for r in db.execute(
            f"SELECT genre_id FROM item_genres WHERE item_id IN ({marks})", chunk))


def unlink_items(db: sqlite3.Connection, item_ids: Sequence[str], dirty: Dirty) -> None:
    """Before items are deleted (or stored anew): drop their links and search rows, and mark what
    they belonged to for ``rebuild``."""
    _mark_links(db, item_ids, dirty)
    for chunk in _chunks(item_ids):
        marks = _marks(chunk)
        db.execute("DELETE FROM search_items WHERE rowid IN "
                   f"(SELECT rowid FROM items WHERE id IN ({marks}))", chunk)
        db.execute(f"DELETE FROM item_artists WHERE item_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM item_genres WHERE item_id IN ({marks})", chunk)


def link_item(db: sqlite3.Connection, item: Item, tags: Tags, dirty: Dirty, rowid: int | None = None) -> None:
    """After an item is stored (its old links already unlinked): its search row, and for a track its
    artists and genres. ``rowid``: the item's row, when the caller knows it (it just inserted it)."""
    if rowid is None:
        rowid = db.execute("SELECT rowid FROM items WHERE id = ?", (item.id,)).fetchone()[0]
    if item.type != "track":
        db.execute("INSERT INTO search_items(rowid, title, artist, album, extra) VALUES (?,?,?,?,?)",
                   (rowid, item.title, item.artist or "", item.album or "",
                    " ".join(n for n in (item.album_artist, item.genre) if n)))
        return
    track = track_artists(tags)
    album = album_artists(tags)
    rows = [(item.id, "track", i, ref.id, ref.name, tags.artist_sort if len(track) == 1 else None, ref.mb_id)
            for i, ref in enumerate(track)]
    rows += [(item.id, "album", i, ref.id, ref.name,
              tags.album_artist_sort if len(album) == 1 and tags.album_artists else None, ref.mb_id)
             for i, ref in enumerate(album)]
    db.executemany("INSERT INTO item_artists(item_id, role, position, artist_id, name, sort_name, mb_id) "
                   "VALUES (?,?,?,?,?,?,?)", rows)
    genres = [genre_ref(name) for name in tags.genres]
    db.executemany("INSERT OR IGNORE INTO item_genres(item_id, position, genre_id, name) VALUES (?,?,?,?)",
                   [(item.id, i, gid, name) for i, (gid, name) in enumerate(genres)])
    db.execute("INSERT INTO search_items(rowid, title, artist, album, extra) VALUES (?,?,?,?,?)",
               (rowid, item.title, " ".join(r.name for r in track), item.album or "",
                " ".join([r.name for r in album] + [name for _, name in genres])))
    dirty.artists.update(r[3] for r in rows)
    dirty.genres.update(gid for gid, _ in genres)
    album_of = item_album(item, tags)
    if album_of is not None:
        dirty.albums.add(album_of)


def rebuild(db: sqlite3.Connection, dirty: Dirty) -> None:
    """Recompute the rows of the albums, artists and genres in ``dirty`` from their items (a row
    without items left is deleted), then empty ``dirty``."""
    for artist_id in sorted(dirty.artists):
        _rebuild_artist(db, artist_id)
    for genre_id in sorted(dirty.genres):
        _rebuild_genre(db, genre_id)
    for aid in sorted(dirty.albums):  # after those: its album_refs take the names of the rows just rebuilt
        _rebuild_album(db, aid)
    # A genre's albums are those with a track of it: the albums' refs hold each of their genres once.
    db.executemany("UPDATE genres SET album_count = (SELECT count(*) FROM album_refs "
                   "WHERE kind = 'genre' AND ref_id = genres.id) WHERE id = ?",
                   [(genre_id,) for genre_id in sorted(dirty.genres)])
    dirty.albums.clear()
    dirty.artists.clear()
    dirty.genres.clear()


def _forget(db: sqlite3.Connection, table: str, search: str, row_id: str) -> None:
    old = db.execute(f"SELECT rowid FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if old is not None:
        db.execute(f"DELETE FROM {search} WHERE rowid = ?", (old[0],))
        db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))


def _rebuild_album(db: sqlite3.Connection, aid: str) -> None:
    rows = db.execute(
        "SELECT f.tags, f.sample_count * 1000 / f.sample_rate, i.added_at FROM items i "
        "JOIN files f ON f.item_id = i.id AND f.position = 0 WHERE i.album_id = ? "
        "ORDER BY i.disc_number, i.track_number, i.sort_key, i.id", (aid,)).fetchall()
    _forget(db, "albums", "search_albums", aid)
    db.execute("DELETE FROM album_refs WHERE album_id = ?", (aid,))
    if not rows:
        return
    for kind, sql in _ALBUM_REFS:
        refs = dict.fromkeys(db.execute(sql, (aid,)).fetchall())  # (id, name) once each, first seen first
        db.executemany("INSERT INTO album_refs(album_id, kind, position, ref_id, name) VALUES (?,?,?,?,?)",
                       [(aid, kind, i, ref_id, name) for i, (ref_id, name) in enumerate(refs)])
    summary: AlbumSummary = summarize_album([tags_from_json(orjson.loads(r[0])) for r in rows])
    db.execute(
        "INSERT INTO albums(id, name, sort_key, artist, artist_sort_key, year, original_year, compilation, "
        "mb_release_id, mb_release_group_id, label, track_count, disc_count, duration_ms, added_at, shuffle) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (aid, summary.name, natural_text(summary.sort_name), summary.artist,
         natural_text(summary.artist_sort), summary.year, summary.original_year, int(summary.compilation),
         summary.mb_release_id, summary.mb_release_group_id, summary.label, len(rows), summary.disc_count,
         sum(int(r[1]) for r in rows), min(float(r[2]) for r in rows), shuffle_key(aid)))
    rowid = db.execute("SELECT rowid FROM albums WHERE id = ?", (aid,)).fetchone()[0]
    db.execute("INSERT INTO search_albums(rowid, name, artist) VALUES (?,?,?)",
               (rowid, summary.name, summary.artist))


def _rebuild_artist(db: sqlite3.Connection, artist_id: str) -> None:
    rows = db.execute(
        "SELECT a.name, a.sort_name, a.mb_id, a.role, a.item_id, i.album_id FROM item_artists a "
        "JOIN items i ON i.id = a.item_id WHERE a.artist_id = ?", (artist_id,)).fetchall()
    _forget(db, "artists", "search_artists", artist_id)
    if not rows:
        return
    name = _most_common(r[0] for r in rows) or ""
    sort_name = _most_common(r[1] for r in rows)
    db.execute(
        "INSERT INTO artists(id, name, sort_name, sort_key, mb_artist_id, album_count, track_count) "
        "VALUES (?,?,?,?,?,?,?)",
        (artist_id, name, sort_name, natural_text(sort_name or name), _most_common(r[2] for r in rows),
         len({r[5] for r in rows if r[3] == "album" and r[5] is not None}),
         len({r[4] for r in rows if r[3] == "track"})))
    rowid = db.execute("SELECT rowid FROM artists WHERE id = ?", (artist_id,)).fetchone()[0]
    db.execute("INSERT INTO search_artists(rowid, name) VALUES (?,?)", (rowid, name))


def _rebuild_genre(db: sqlite3.Connection, genre_id: str) -> None:
    """A genre's row with its name and track count; ``rebuild`` counts its albums after the albums.
    Read from the covering indexes of ``item_genres`` alone (no visit to the items): a big genre is
    rebuilt at every commit of a scan."""
    db.execute("DELETE FROM genres WHERE id = ?", (genre_id,))
    tracks = db.execute("SELECT count(DISTINCT item_id) FROM item_genres WHERE genre_id = ?",
                        (genre_id,)).fetchone()[0]
    if not tracks:
        return
    # The spelling most of its tracks use; on a tie the greatest (BINARY order is code point order).
    name = db.execute("SELECT name FROM item_genres WHERE genre_id = ? GROUP BY name "
                      "ORDER BY count(*) DESC, name DESC LIMIT 1", (genre_id,)).fetchone()[0]
    db.execute("INSERT INTO genres(id, name, sort_key, album_count, track_count) VALUES (?,?,?,0,?)",
               (genre_id, name, natural_text(name), tracks))


def _most_common(values: Iterable[str | None]) -> str | None:
    counts: dict[str, int] = {}
    for value in values:
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    return max(counts, key=lambda v: (counts[v], v)) if counts else None
