"""The catalog's SQLite schema, and rebuilding it when it changes."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

SCHEMA_VERSION = "7"  # 3: search_items (every item type, album artists and genres); 4: content;
# 5: albums.shuffle, album_refs, an index per album sort; 6: items_album_of, album_refs_ref;
# 7: item_genres_name
_TABLES = ("search_tracks", "search_items", "search_albums", "search_artists", "item_artists", "item_genres",
           "album_refs", "albums", "artists", "genres", "chapters", "files", "items", "failures", "meta")

_MISSING = """
-- Items that went (deleted, or moved while nobody looked): a file with the same audio found later
-- takes the id back (library/identity). Not dropped with the rest when the catalog is rebuilt.
CREATE TABLE IF NOT EXISTS missing_ids (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  content TEXT NOT NULL,
  removed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS missing_content ON missing_ids(type, content);
CREATE TRIGGER IF NOT EXISTS items_gone AFTER DELETE ON items WHEN old.content IS NOT NULL BEGIN
  INSERT OR REPLACE INTO missing_ids(id, type, content, removed_at)
  VALUES (old.id, old.type, old.content, (julianday('now') - 2440587.5) * 86400.0);
END;
CREATE TRIGGER IF NOT EXISTS items_back AFTER INSERT ON items BEGIN
  DELETE FROM missing_ids WHERE id = new.id;
END;
"""

_ALBUM_EXTRAS = """
-- One index per album sort (library/browse's _ALBUM_KEYS, the same expressions): a page is an index
-- range, not a sort of every album.
CREATE INDEX IF NOT EXISTS albums_alphabetical ON albums(sort_key, artist_sort_key, id);
CREATE INDEX IF NOT EXISTS albums_artist ON albums(artist_sort_key, coalesce(year, 0), sort_key, id);
CREATE INDEX IF NOT EXISTS albums_newest ON albums(-added_at, sort_key, id);
CREATE INDEX IF NOT EXISTS albums_year ON albums(coalesce(year, 99999), sort_key, id);
-- An album's album artists and genres (from its tracks, in track order, each once), kept with the album
-- row: a page of albums reads them with one indexed range per album, not a join over its tracks.
CREATE TABLE IF NOT EXISTS album_refs (
  album_id TEXT NOT NULL,
  kind TEXT NOT NULL,  -- 'artist' or 'genre'
  position INTEGER NOT NULL,
  ref_id TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (album_id, kind, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS album_refs_ref ON album_refs(kind, ref_id, album_id);  -- a genre's albums
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  title TEXT NOT NULL,
  artist TEXT, album TEXT, album_artist TEXT,
  track_number INTEGER, disc_number INTEGER, genre TEXT,
  fingerprint TEXT NOT NULL,
  root TEXT NOT NULL,
  relative TEXT NOT NULL,
  sort_key TEXT NOT NULL,
  search TEXT NOT NULL,
  seen_scan INTEGER NOT NULL,
  updated_at REAL NOT NULL,
  added_at REAL NOT NULL,  -- first stored: kept when the item is updated (albums sort=newest)
  album_id TEXT,           -- tracks with an album title (library/grouping)
  year INTEGER,
  content TEXT             -- the files' audio fingerprints combined (ids.unit_content): moves keep the id
);
CREATE INDEX IF NOT EXISTS items_album ON items(album_id, disc_number, track_number, sort_key);
CREATE INDEX IF NOT EXISTS items_order ON items(sort_key, id);
CREATE INDEX IF NOT EXISTS items_type_order ON items(type, sort_key, id);
CREATE INDEX IF NOT EXISTS items_seen ON items(seen_scan);
CREATE INDEX IF NOT EXISTS items_content ON items(type, content);
CREATE INDEX IF NOT EXISTS items_place ON items(root, relative);
CREATE INDEX IF NOT EXISTS items_album_of ON items(id, album_id);  -- covers the per-user sorts' lookups
""" + _MISSING + """CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY,
  item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  container TEXT NOT NULL,
  codec TEXT NOT NULL,
  sample_rate INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  bit_rate INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  tags BLOB NOT NULL,      -- the probe's tags and embedded chapters (JSON): a book whose other
  embedded BLOB NOT NULL,  -- files changed is rebuilt without probing this one again
  content TEXT             -- the audio's fingerprint (probe.AudioHasher); NULL: not computed yet
);
CREATE INDEX IF NOT EXISTS files_item ON files(item_id, position);
CREATE TABLE IF NOT EXISTS chapters (
  item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  title TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  PRIMARY KEY (item_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
  path TEXT PRIMARY KEY,
  root TEXT NOT NULL,
  relative TEXT NOT NULL,
  type TEXT NOT NULL,
  size INTEGER,
  mtime_ns INTEGER,
  reason TEXT NOT NULL,
  failed_at REAL NOT NULL,
  seen_scan INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_seen ON failures(seen_scan);

-- Derived from the items by library/catalog_links: rows of albums, artists and genres are rebuilt
-- from their items whenever an item of theirs is stored or removed.
CREATE TABLE IF NOT EXISTS item_artists (
  item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
  role TEXT NOT NULL,  -- 'track' or 'album'
  position INTEGER NOT NULL,
  artist_id TEXT NOT NULL,
  name TEXT NOT NULL,
  sort_name TEXT,
  mb_id TEXT,
  PRIMARY KEY (item_id, role, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_artists_artist ON item_artists(artist_id, role, item_id);
CREATE TABLE IF NOT EXISTS item_genres (
  item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  genre_id TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (item_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_genres_genre ON item_genres(genre_id, item_id);
CREATE INDEX IF NOT EXISTS item_genres_name ON item_genres(genre_id, name);  -- a genre's spellings
CREATE TABLE IF NOT EXISTS albums (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  sort_key TEXT NOT NULL,
  artist TEXT NOT NULL,
  artist_sort_key TEXT NOT NULL,
  year INTEGER,
  original_year INTEGER,
  compilation INTEGER NOT NULL,
  mb_release_id TEXT,
  mb_release_group_id TEXT,
  label TEXT,
  track_count INTEGER NOT NULL,
  disc_count INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  added_at REAL NOT NULL,
  shuffle INTEGER NOT NULL  -- shuffle_key(id): sort=random orders by it XOR the cursor's seed
);
""" + _ALBUM_EXTRAS + """
CREATE TABLE IF NOT EXISTS artists (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  sort_name TEXT,
  sort_key TEXT NOT NULL,
  mb_artist_id TEXT,
  album_count INTEGER NOT NULL,
  track_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS artists_order ON artists(sort_key, id);
CREATE TABLE IF NOT EXISTS genres (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  sort_key TEXT NOT NULL,
  album_count INTEGER NOT NULL,
  track_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS genres_order ON genres(sort_key, id);
-- Full-text search, rowids those of items / albums / artists. Diacritics folded ("beyonce" finds
-- "Beyoncé"), prefix indexes for type-ahead. search_items holds every item (GET /items?q=, and the
-- tracks of GET /search); extra: album artists and genres.
CREATE VIRTUAL TABLE IF NOT EXISTS search_items USING fts5(
  title, artist, album, extra, tokenize='unicode61 remove_diacritics 2', prefix='1 2 3');
CREATE VIRTUAL TABLE IF NOT EXISTS search_albums USING fts5(
  name, artist, tokenize='unicode61 remove_diacritics 2', prefix='1 2 3');
CREATE VIRTUAL TABLE IF NOT EXISTS search_artists USING fts5(
  name, tokenize='unicode61 remove_diacritics 2', prefix='1 2 3');
"""


def _from_3(db: sqlite3.Connection) -> None:
    """Version 3 → 4: the content fingerprints (NULL until the next scan computes them: the item ids
    already stored stay, and a moved item keeps its id from then on)."""
    db.executescript(
        "BEGIN; ALTER TABLE items ADD COLUMN content TEXT; ALTER TABLE files ADD COLUMN content TEXT; "
        "CREATE INDEX IF NOT EXISTS items_content ON items(type, content); "
        "CREATE INDEX IF NOT EXISTS items_place ON items(root, relative); "
        + _MISSING +
        "UPDATE meta SET value = '4' WHERE key = 'schema'; COMMIT;")


def _from_4(db: sqlite3.Connection) -> None:
    """Version 4 → 5: the album extras; the album rows are then rebuilt (``migrate`` says so) to fill
    them."""
    db.executescript("BEGIN; ALTER TABLE albums ADD COLUMN shuffle INTEGER NOT NULL DEFAULT 0; "
                     "DROP INDEX IF EXISTS albums_alphabetical; " + _ALBUM_EXTRAS
                     + "UPDATE meta SET value = '5' WHERE key = 'schema'; COMMIT;")


def _from_5(db: sqlite3.Connection) -> None:
    """Version 5 → 6: a covering index for a track's album (the per-user album sorts look up the
    albums of 2 000 tracks: six times faster without a visit to each row), and one for a genre's
    albums (the genre filter of the album lists, from the albums' refs rather than every track)."""
    db.executescript("BEGIN; CREATE INDEX IF NOT EXISTS items_album_of ON items(id, album_id); "
                     "CREATE INDEX IF NOT EXISTS album_refs_ref ON album_refs(kind, ref_id, album_id); "
                     "UPDATE meta SET value = '6' WHERE key = 'schema'; COMMIT;")


def _from_6(db: sqlite3.Connection) -> None:
    """Version 6 → 7: a genre's spellings in an index (its row is rebuilt from it at every commit that
    touches the genre, without a visit to each of its tracks)."""
    db.executescript("BEGIN; CREATE INDEX IF NOT EXISTS item_genres_name ON item_genres(genre_id, name); "
                     f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'; COMMIT;")


def migrate(db: sqlite3.Connection, artist_separators: Sequence[str]) -> bool:
    """Create the schema, migrate it from version 3 in place, or drop everything first when it is of
    another version or was built with other artist separators. The catalog mirrors the filesystem:
    a rebuild costs one full scan, and the ids of items that were moved (no longer those their path
    derives) are carried over in ``kept_ids`` for that scan to find (``identity``). True when the album
    rows must be rebuilt from their items (migrated from 4)."""
    separators = "\x1f".join(artist_separators)
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    stored = dict(db.execute("SELECT key, value FROM meta").fetchall()) if has_meta else None
    albums_stale = False
    if stored is not None and stored.get("schema") == "3" and stored.get("artist_separators") == separators:
        _from_3(db)
        stored["schema"] = "4"
    if stored is not None and stored.get("schema") == "4" and stored.get("artist_separators") == separators:
        _from_4(db)
        stored["schema"], albums_stale = "5", True
    if stored is not None and stored.get("schema") == "5" and stored.get("artist_separators") == separators:
        _from_5(db)
        stored["schema"] = "6"
    if stored is not None and stored.get("schema") == "6" and stored.get("artist_separators") == separators:
        _from_6(db)
        stored["schema"] = SCHEMA_VERSION
    db.execute("CREATE TABLE IF NOT EXISTS kept_ids (root TEXT NOT NULL, relative TEXT NOT NULL, "
               "id TEXT NOT NULL, PRIMARY KEY (root, relative)) WITHOUT ROWID")
    if stored is not None and stored.get("schema") == SCHEMA_VERSION \
            and stored.get("artist_separators") == separators:
        return albums_stale  # as built: the CREATE statements would only cost every open a few ms
    if stored is not None:
        has_items = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='items'").fetchone()
        if has_items:
            db.execute("INSERT OR REPLACE INTO kept_ids(root, relative, id) "
                       "SELECT root, relative, id FROM items")
        db.executescript("".join(f"DROP TABLE IF EXISTS {table};" for table in _TABLES))
    db.executescript(SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('scan_generation', '0')")
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('artist_separators', ?)", (separators,))
    return False


def shuffle_key(row_id: str) -> int:
    """A row's fixed random number (62 bits, from its id): sort=random orders by it XOR a seed, in
    plain SQL arithmetic (a Python function called per row cost ten times as much per page)."""
    return int.from_bytes(hashlib.blake2b(row_id.encode(), digest_size=8).digest(), "big") >> 2
