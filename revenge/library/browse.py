"""Browsing the music library: albums, artists and genres in pages, one album with its tracks, one
artist with their albums, and full-text search. Read-only queries over the catalog's derived tables
(library/catalog_links keeps them in step with the items).

Lists are keyset-paginated: a cursor holds the sort, the random seed and the sort key of the last row
handed out, so a page never repeats or skips a row while the scan adds others.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson

from revenge.library.catalog import Catalog, fts_query
from revenge.library.cursors import CursorError, cursor_text, cursor_values
from revenge.library.grouping import genre_ref
from revenge.library.model import ITEM_ID_RE, Item
from revenge.library.tags import Tags, tags_from_json

AlbumSort = Literal["alphabetical", "artist", "newest", "random", "year"]
PlayedSort = Literal["recently_played", "frequent"]  # per user: from the progress store's played lists
ALBUM_SORTS: tuple[AlbumSort | PlayedSort, ...] = ("alphabetical", "artist", "newest", "random", "year",
                                                   "recently_played", "frequent")
SEARCH_RANKED = 2000  # matching items a track search ranks (``search``)
PLAYED_TRACKS = 2000  # the caller's tracks (most recent, most played) the per-user sorts rank albums by
MAX_RELATED = 500  # albums of one artist, tracks of one album: bounded like every list
_CHUNK = 500  # ids per IN (...) list
COVER_CANDIDATES = 4  # tracks looked at for an album's or an artist's picture
_MAX_SEED = 2**31
T = TypeVar("T")

# Each sort's key columns (ascending; the album id breaks ties). No NULLs: row values compare them as
# unknown, which would end a page early.
_ALBUM_KEYS: dict[str, tuple[str, ...]] = {
    "alphabetical": ("sort_key", "artist_sort_key"),
    "artist": ("artist_sort_key", "coalesce(year, 0)", "sort_key"),
    "newest": ("-added_at", "sort_key"),
    "year": ("coalesce(year, 99999)", "sort_key"),
    "random": ("((shuffle | {seed}) - (shuffle & {seed}))",),  # shuffle XOR seed: SQLite has no ^
}
_ALBUM_COLUMNS = ("id, name, artist, year, original_year, compilation, mb_release_id, mb_release_group_id, "
                  "label, track_count, disc_count, duration_ms, added_at")


@dataclass(frozen=True, slots=True)
class Ref:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Album:
    id: str
    name: str
    artist: str
    year: int | None
    original_year: int | None
    compilation: bool
    mb_release_id: str | None
    mb_release_group_id: str | None
    label: str | None
    track_count: int
    disc_count: int
    duration_ms: int
    added_at: float
    artists: tuple[Ref, ...] = ()
    genres: tuple[Ref, ...] = ()
    cover_items: tuple[str, ...] = ()  # its first tracks: the album's cover is the first one's that has one


@dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str
    sort_name: str | None
    mb_artist_id: str | None
    album_count: int
    track_count: int
    cover_items: tuple[str, ...] = ()  # a few of their tracks, album artist's first: the artist's picture


@dataclass(frozen=True, slots=True)
class Genre:
    id: str
    name: str
    album_count: int
    track_count: int


@dataclass(frozen=True, slots=True)
class Track:
    item: Item
    tags: Tags
    album_id: str | None
    artists: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class SearchResult:
    artists: list[Artist]
    albums: list[Album]
    tracks: list[Track]


# ---------------------------------------------------------------------------------------------
# Pure helpers


def encode_list_cursor(kind: str, seed: int, values: Sequence[Any]) -> str:
    return cursor_text([kind, seed, *values])


def decode_list_cursor(cursor: str, kind: str, width: int) -> tuple[int, list[Any]]:
    """(seed, key values) of a cursor made by ``encode_list_cursor(kind, …)`` with ``width`` values,
    the last of them a row id. CursorError for anything else."""
    value = cursor_values(cursor)
    if (not isinstance(value, list) or len(value) != width + 2 or value[0] != kind
            or not isinstance(value[1], int) or isinstance(value[1], bool) or not 0 <= value[1] < _MAX_SEED
            or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value[2:])
            or not isinstance(value[-1], str) or not ITEM_ID_RE.fullmatch(value[-1])):
        raise CursorError("malformed cursor")
    return value[1], value[2:]


def genre_id_of(value: str) -> str:
    """A ``genre=`` filter: a genre id as listed, or a genre name."""
    return value if ITEM_ID_RE.fullmatch(value) else genre_ref(value)[0]


# ---------------------------------------------------------------------------------------------
# Queries


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _albums(db: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Album]:
    ids = [r[0] for r in rows]
    if not ids:
        return []
    refs: dict[tuple[str, str], list[Ref]] = {}
    for album_id, kind, ref_id, name in db.execute(
            f"SELECT album_id, kind, ref_id, name FROM album_refs WHERE album_id IN ({_marks(ids)}) "
            "ORDER BY album_id, kind, position", ids):
        refs.setdefault((album_id, kind), []).append(Ref(ref_id, name))
    covers = {aid: tuple(r[0] for r in db.execute(
        "SELECT id FROM items WHERE album_id = ? ORDER BY disc_number, track_number, sort_key LIMIT ?",
        (aid, COVER_CANDIDATES))) for aid in ids}
    return [Album(*r[:5], bool(r[5]), *r[6:13],  # type: ignore[arg-type]
                  artists=tuple(refs.get((r[0], "artist"), ())),
                  genres=tuple(refs.get((r[0], "genre"), ())),
                  cover_items=covers[r[0]]) for r in rows]


def _artists(db: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Artist]:
    """Artists of rows of _ARTIST_COLUMNS, each with its cover candidates ('album' sorts before 'track':
    the albums they made first, then those they appear on)."""
    return [Artist(*r, cover_items=tuple(i[0] for i in db.execute(  # type: ignore[misc]
        "SELECT item_id FROM item_artists WHERE artist_id = ? ORDER BY role, item_id LIMIT ?",
        (r[0], COVER_CANDIDATES)))) for r in rows]


def album_filters(genre: str | None, year_from: int | None,
                  year_to: int | None) -> tuple[list[str], list[object]]:
    """SQL conditions on ``albums`` (and their parameters) for a genre and a year range."""
    where: list[str] = []
    params: list[object] = []
    if genre is not None:
        # An album's genres are its tracks' (album_refs holds them each once, indexed by genre).
        where.append("id IN (SELECT album_id FROM album_refs WHERE kind = 'genre' AND ref_id = ?)")
        params.append(genre_id_of(genre))
    if year_from is not None:
        where.append("year >= ?")
        params.append(year_from)
    if year_to is not None:
        where.append("year <= ?")
        params.append(year_to)
    return where, params


def list_albums(catalog: Catalog, *, sort: AlbumSort = "alphabetical", genre: str | None = None,
                year_from: int | None = None, year_to: int | None = None, cursor: str | None = None,
                limit: int = 50) -> tuple[list[Album], str | None]:
    """One page of albums in ``sort`` order, and the cursor of the next (None at the end)."""
    width = len(_ALBUM_KEYS[sort]) + 1
    if cursor is not None:
        seed, after = decode_list_cursor(cursor, sort, width)
    else:
        seed, after = (secrets.randbelow(_MAX_SEED) if sort == "random" else 0), None
    keys = [k.format(seed=seed) for k in _ALBUM_KEYS[sort]] + ["id"]
    where, params = album_filters(genre, year_from, year_to)
    if after is not None:
        where.append(f"({', '.join(keys)}) > ({_marks(after)})")
        params.extend(after)
    sql = f"SELECT {_ALBUM_COLUMNS}, {', '.join(keys)} FROM albums"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {', '.join(keys)} LIMIT ?"
    params.append(limit + 1)
    with catalog.reading() as db:
        rows = db.execute(sql, params).fetchall()
        page = rows[:limit]
        albums = _albums(db, page)
    columns = len(_ALBUM_COLUMNS.split(","))
    next_cursor = (encode_list_cursor(sort, seed, page[-1][columns:]) if len(rows) > limit and page else None)
    return albums, next_cursor


def rank_played(played: Sequence[tuple[str, int, int]], album_of: dict[str, str],
                sort: PlayedSort) -> list[tuple[tuple[int, ...], str]]:
    """Albums ranked by the caller's plays of their tracks: ``played`` is (item id, last played at,
    play count) per track, ``album_of`` a track's album. An album's last play is its tracks' latest,
    its play count their sum. Answers (sort key, album id), ascending: ``recently_played`` by last play
    (newest first), ``frequent`` by play count (then last play), both then by album id."""
    last: dict[str, int] = {}
    plays: dict[str, int] = {}
    for item_id, at, count in played:
        album = album_of.get(item_id)
        if album is not None:
            last[album] = max(last.get(album, at), at)
            plays[album] = plays.get(album, 0) + count
    keys = {a: (-last[a],) if sort == "recently_played" else (-plays[a], -last[a]) for a in last
            if sort == "recently_played" or plays[a] > 0}
    return sorted((k, a) for a, k in keys.items())


ALBUM_OF_KEPT = 50_000  # tracks whose album is remembered (a user's played tracks: up to PLAYED_TRACKS)


def _album_of(catalog: Catalog, db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
    """The album of each of ``ids`` that has one; remembered until the catalog changes, since the
    per-user sorts ask for the same played tracks' albums on every page."""
    known: dict[str, str | None] = catalog.derived("album_of", lambda _: {})
    missing = [i for i in ids if i not in known]
    if len(known) + len(missing) > ALBUM_OF_KEPT:
        known.clear()
        missing = list(ids)
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start:start + _CHUNK]
        found = dict(db.execute(f"SELECT id, album_id FROM items WHERE id IN ({_marks(chunk)}) "
                                "AND album_id IS NOT NULL", chunk).fetchall())
        known.update((i, found.get(i)) for i in chunk)
    return {i: album for i in ids if (album := known[i]) is not None}


def list_played_albums(catalog: Catalog, played: Sequence[tuple[str, int, int]], *, sort: PlayedSort,
                       genre: str | None = None, year_from: int | None = None, year_to: int | None = None,
                       cursor: str | None = None, limit: int = 50) -> tuple[list[Album], str | None]:
    """One page of the albums of the tracks in ``played`` (the caller's, see ``rank_played``), and the
    next page's cursor. Bounded by ``played``, whatever the size of the library."""
    width = 2 if sort == "recently_played" else 3
    after = decode_list_cursor(cursor, sort, width)[1] if cursor is not None else None
    if after is not None and not all(isinstance(v, int) for v in after[:-1]):
        raise CursorError("malformed cursor")  # keys are integers: a str among them would not compare
    filters, params = album_filters(genre, year_from, year_to)
    with catalog.reading() as db:
        ranked = rank_played(played, _album_of(catalog, db, [p[0] for p in played]), sort)
        if after is not None:
            ranked = [r for r in ranked if [*r[0], r[1]] > after]
        # In rank order, a chunk at a time, until a page and one more pass the filters.
        rows: dict[str, Sequence[Any]] = {}
        chosen: list[tuple[tuple[int, ...], str]] = []
        for start in range(0, len(ranked), limit + 1):
            chunk = ranked[start:start + limit + 1]
            chunk_ids = [a for _, a in chunk]
            where = " AND ".join([f"id IN ({_marks(chunk_ids)})", *filters])
            rows.update((r[0], r) for r in db.execute(f"SELECT {_ALBUM_COLUMNS} FROM albums WHERE {where}",
                                                      [*chunk_ids, *params]))
            chosen += [r for r in chunk if r[1] in rows]
            if len(chosen) > limit:
                break
        page = chosen[:limit]
        albums = _albums(db, [rows[a] for _, a in page])
    next_cursor = (encode_list_cursor(sort, 0, [*page[-1][0], page[-1][1]])
                   if len(chosen) > limit and page else None)
    return albums, next_cursor


def _tracks(catalog: Catalog, db: sqlite3.Connection, ids: Sequence[str]) -> list[Track]:
    """Tracks by id, in the order of ``ids`` (ids no longer stored are left out)."""
    if not ids:
        return []
    marks = _marks(ids)
    tags = {item_id: tags_from_json(orjson.loads(raw)) for item_id, raw in db.execute(
        f"SELECT item_id, tags FROM files WHERE position = 0 AND item_id IN ({marks})", ids)}
    albums = dict(db.execute(f"SELECT id, album_id FROM items WHERE id IN ({marks})", ids).fetchall())
    artists: dict[str, list[Ref]] = {}
    for item_id, artist_id, name in db.execute(
            "SELECT item_id, artist_id, name FROM item_artists "
            f"WHERE role = 'track' AND item_id IN ({marks}) "
            "ORDER BY item_id, position", ids):
        artists.setdefault(item_id, []).append(Ref(artist_id, name))
    items = catalog.cached_items(ids)
    return [Track(items[i], tags.get(i, Tags()), albums.get(i), tuple(artists.get(i, ())))
            for i in ids if i in items]


def get_album(catalog: Catalog, album_id: str) -> tuple[Album, list[Track]] | None:
    """An album and its tracks in disc and track order."""
    with catalog.reading() as db:
        rows = db.execute(f"SELECT {_ALBUM_COLUMNS} FROM albums WHERE id = ?", (album_id,)).fetchall()
        if not rows:
            return None
        album = _albums(db, rows)[0]
        ids = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE album_id = ? ORDER BY coalesce(disc_number, 1), "
            "coalesce(track_number, 0), sort_key, id LIMIT ?", (album_id, MAX_RELATED))]
        tracks = _tracks(catalog, db, ids)
    return album, tracks


_ARTIST_COLUMNS = "id, name, sort_name, mb_artist_id, album_count, track_count"


def _name_page(catalog: Catalog, kind: str, columns: str, cursor: str | None, limit: int,
               make: Callable[[sqlite3.Connection, list[tuple[Any, ...]]], list[T]],
               ) -> tuple[list[T], str | None]:
    """A page of the artists or genres table by (sort_key, id): ``make(db, rows)`` of the rows (without
    the sort key), and the next page's cursor."""
    sql = f"SELECT {columns}, sort_key FROM {kind}"
    params: list[object] = []
    if cursor is not None:
        _, after = decode_list_cursor(cursor, kind, 2)
        sql += " WHERE (sort_key, id) > (?, ?)"
        params.extend(after)
    sql += " ORDER BY sort_key, id LIMIT ?"
    params.append(limit + 1)
    with catalog.reading() as db:
        rows = db.execute(sql, params).fetchall()
        page = rows[:limit]
        made = make(db, [r[:-1] for r in page])
    next_cursor = (encode_list_cursor(kind, 0, [page[-1][-1], page[-1][0]])
                   if len(rows) > limit and page else None)
    return made, next_cursor


def list_artists(catalog: Catalog, *, cursor: str | None = None,
                 limit: int = 50) -> tuple[list[Artist], str | None]:
    return _name_page(catalog, "artists", _ARTIST_COLUMNS, cursor, limit, _artists)


def get_artist(catalog: Catalog, artist_id: str) -> tuple[Artist, list[Album], list[Album]] | None:
    """An artist, the albums they are the album artist of, and the albums they appear on (a track of
    theirs on someone else's album or a compilation); albums by year, then title."""
    with catalog.reading() as db:
        row = db.execute(f"SELECT {_ARTIST_COLUMNS} FROM artists WHERE id = ?", (artist_id,)).fetchone()
        if row is None:
            return None
        lists: dict[str, list[Album]] = {}
        for role in ("album", "track"):
            rows = db.execute(
                f"SELECT {_ALBUM_COLUMNS} FROM albums WHERE id IN (SELECT i.album_id FROM item_artists a "
                "JOIN items i ON i.id = a.item_id WHERE a.artist_id = ? AND a.role = ?) "
                "ORDER BY coalesce(year, 99999), sort_key, id LIMIT ?", (artist_id, role, MAX_RELATED)
            ).fetchall()
            lists[role] = _albums(db, rows)
        artist = _artists(db, [row])[0]
    own = {a.id for a in lists["album"]}
    return artist, lists["album"], [a for a in lists["track"] if a.id not in own]


def list_genres(catalog: Catalog, *, cursor: str | None = None,
                limit: int = 50) -> tuple[list[Genre], str | None]:
    return _name_page(catalog, "genres", "id, name, album_count, track_count", cursor, limit,
                      lambda _, rows: [Genre(*r) for r in rows])


def search(catalog: Catalog, text: str, limit: int = 20) -> SearchResult:
    """Artists, albums and tracks whose names hold every word of ``text`` as a word prefix
    (diacritics and case folded), each list best match first (BM25; a track's title weighs more
    than its artist, which weighs more than its album). Tracks are ranked among the first
    ``SEARCH_RANKED`` items that match, in catalog order: ranking all 40 000 matches of a
    three-letter prefix in a 200 000-track library took 50-100 ms, and one more letter narrows it."""
    query = fts_query(text)
    if query is None:
        return SearchResult([], [], [])
    with catalog.reading() as db:
        artist_rows = db.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in _ARTIST_COLUMNS.split(','))} FROM search_artists s "
            "JOIN artists a ON a.rowid = s.rowid WHERE search_artists MATCH ? "
            "ORDER BY bm25(search_artists), a.sort_key LIMIT ?", (query, limit)).fetchall()
        album_rows = db.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in _ALBUM_COLUMNS.split(','))} FROM search_albums s "
            "JOIN albums a ON a.rowid = s.rowid WHERE search_albums MATCH ? "
            "ORDER BY bm25(search_albums, 2.0, 1.0), a.sort_key LIMIT ?", (query, limit)).fetchall()
        track_ids = [r[0] for r in db.execute(
            "SELECT i.id FROM (SELECT rowid AS rid, bm25(search_items, 4.0, 2.0, 1.0, 0.5) AS score "
            "FROM search_items WHERE search_items MATCH ? LIMIT ?) s JOIN items i ON i.rowid = s.rid "
            "WHERE i.type = 'track' ORDER BY s.score, i.sort_key LIMIT ?",
            (query, max(SEARCH_RANKED, limit), limit))]
        return SearchResult(_artists(db, artist_rows), _albums(db, album_rows),
                            _tracks(catalog, db, track_ids))
