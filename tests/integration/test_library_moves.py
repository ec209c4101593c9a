"""Ids that survive moves at the scanner's level (no server): full scans, a catalog of version 3
migrated in place, a rebuild for other artist separators, and a path whose id a moved item holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from revenge.library import browse
from revenge.library.catalog import Catalog
from revenge.library.catalog_schema import SCHEMA_VERSION
from revenge.library.ids import item_id
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanReport, ScanStatus
from tests.live import test_settings
from tests.mediagen import write_audio


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    write_audio(root / "A" / "one.mp3", seconds=1.0, freq=440, tags={"title": "One"})
    write_audio(root / "A" / "two.flac", seconds=1.0, freq=550, tags={"title": "Two"})
    return root


def scan(music: Path, catalog: Catalog, **overrides: object) -> ScanReport:
    settings = test_settings(music.parent / "data", library=(music,), **overrides)
    return scan_library(settings, catalog, ScanStatus())


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


def ids_by_title(catalog: Catalog) -> dict[str, str]:
    return {i.title: i.id for i in catalog.list_items(limit=100)[0]}


def test_a_full_scan_keeps_the_id_of_a_moved_file_and_a_new_file_at_its_old_path_gets_another(
        music: Path, catalog: Catalog) -> None:
    scan(music, catalog)
    before = ids_by_title(catalog)
    assert before["One"] == item_id("track", "A/one.mp3")
    (music / "B").mkdir()
    (music / "A" / "one.mp3").rename(music / "B" / "renamed.mp3")
    report = scan(music, catalog)
    assert (report.items_moved, report.items_added, report.items_removed) == (1, 0, 0)
    assert ids_by_title(catalog) == before
    # Other audio at the old path: a new item; the moved one keeps the id the path derives.
    write_audio(music / "A" / "one.mp3", seconds=1.5, freq=990, tags={"title": "Newcomer"})
    scan(music, catalog)
    after = ids_by_title(catalog)
    assert after["One"] == before["One"] and after["Newcomer"] not in before.values()


def test_a_deleted_file_that_comes_back_takes_its_id_back(music: Path, catalog: Catalog,
                                                         tmp_path: Path) -> None:
    scan(music, catalog)
    before = ids_by_title(catalog)
    (music / "A" / "two.flac").rename(tmp_path / "outside.flac")
    assert scan(music, catalog).items_removed == 1
    (tmp_path / "outside.flac").rename(music / "elsewhere.flac")
    assert scan(music, catalog).items_moved == 1
    assert ids_by_title(catalog) == before


_UNDO_7 = "DROP INDEX item_genres_name; "  # back to version 6
_UNDO_6 = _UNDO_7 + "DROP INDEX items_album_of; DROP INDEX album_refs_ref; "  # back to version 5
_UNDO_5 = (_UNDO_6 + "DROP TABLE album_refs; DROP INDEX albums_artist; DROP INDEX albums_newest; "
           "DROP INDEX albums_year; "
           "DROP INDEX albums_alphabetical; CREATE INDEX albums_alphabetical ON albums(sort_key, id); "
           "ALTER TABLE albums DROP COLUMN shuffle; ")  # back to version 4's album tables


def test_a_version_5_catalog_gets_its_covering_indexes_in_place(music: Path, tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    scan(music, cat)
    before = ids_by_title(cat)
    cat.close()
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + "UPDATE meta SET value = '5' WHERE key = 'schema';")
    db.close()
    cat = Catalog(path)
    try:
        assert ids_by_title(cat) == before  # not rebuilt: no rescan needed
        with cat.reading() as read:
            plan = read.execute("EXPLAIN QUERY PLAN SELECT id, album_id FROM items WHERE id IN (?, ?) "
                                "AND album_id IS NOT NULL",  # list_played_albums' lookup
                                ("a", "b")).fetchall()
            assert "COVERING INDEX items_album_of" in " ".join(str(row) for row in plan)
            plan = read.execute("EXPLAIN QUERY PLAN SELECT album_id FROM album_refs WHERE kind = 'genre' "
                                "AND ref_id = ?", ("g",)).fetchall()  # album_filters' genre
            assert "COVERING INDEX album_refs_ref" in " ".join(str(row) for row in plan)
            plan = read.execute("EXPLAIN QUERY PLAN SELECT name FROM item_genres WHERE genre_id = ? "
                                "GROUP BY name", ("g",)).fetchall()  # a genre's row, rebuilt
            assert "COVERING INDEX item_genres_name" in " ".join(str(row) for row in plan)
            assert read.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == SCHEMA_VERSION
    finally:
        cat.close()


def test_a_version_4_catalog_gets_its_album_extras_in_place(music: Path, tmp_path: Path) -> None:
    for n, genre in ((1, "Rock"), (2, "Jazz")):
        write_audio(music / "B" / f"{n}.flac", seconds=0.2, tags={"title": f"B{n}", "album": "Bee",
                                                                 "album_artist": "Bea", "genre": genre})
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    scan(music, cat)
    before = browse.list_albums(cat)[0]
    assert [(a.name, [r.name for r in a.artists], [g.name for g in a.genres]) for a in before] == [
        ("Bee", ["Bea"], ["Rock", "Jazz"])]
    cat.close()
    db = sqlite3.connect(path)
    db.executescript(_UNDO_5 + "UPDATE meta SET value = '4' WHERE key = 'schema';")
    db.close()
    cat = Catalog(path)
    try:
        assert before and browse.list_albums(cat)[0] == before  # artists and genres from album_refs
        assert sorted(a.id for a in browse.list_albums(cat, sort="random")[0]) == sorted(a.id for a in before)
    finally:
        cat.close()


def test_a_version_3_catalog_is_migrated_with_its_items_and_learns_their_fingerprints(
        music: Path, tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    scan(music, cat)
    before = ids_by_title(cat)
    cat.close()
    db = sqlite3.connect(path)  # as version 3 left it: no fingerprints, no missing ids
    db.executescript(_UNDO_5 + "DROP TRIGGER items_gone; DROP TRIGGER items_back; DROP TABLE missing_ids; "
                     "DROP TABLE kept_ids; DROP INDEX items_content; DROP INDEX items_place; "
                     "ALTER TABLE items DROP COLUMN content; ALTER TABLE files DROP COLUMN content; "
                     "UPDATE meta SET value = '3' WHERE key = 'schema';")
    db.close()
    cat = Catalog(path)
    try:
        assert ids_by_title(cat) == before
        with cat.reading() as read:
            assert read.execute("SELECT count(*) FROM items WHERE content IS NULL").fetchone()[0] == 2
        report = scan(music, cat)
        assert report.unchanged == 2 and report.probed == 0
        with cat.reading() as read:
            assert read.execute("SELECT count(*) FROM items WHERE content IS NULL").fetchone()[0] == 0
        (music / "A" / "one.mp3").rename(music / "moved.mp3")
        scan(music, cat)
        assert ids_by_title(cat) == before
    finally:
        cat.close()


def test_a_rebuild_for_other_artist_separators_keeps_moved_ids(music: Path, tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    scan(music, cat)
    before = ids_by_title(cat)
    (music / "A" / "one.mp3").rename(music / "moved.mp3")
    scan(music, cat)
    cat.close()
    cat = Catalog(path, artist_separators=(";",))  # drops and rebuilds every table
    try:
        assert ids_by_title(cat) == {}
        scan(music, cat, artist_separators=(";",))
        assert ids_by_title(cat) == before
    finally:
        cat.close()


def test_audio_shared_by_many_items_is_not_matched_and_costs_no_check_per_item(
        music: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan of N copies of one file stays linear: with more stored items of that audio than
    identity.MAX_SAME_AUDIO, no one of them is a move's source (it would be a guess), and the scanner
    does not look for their files once per new copy (it did: 20 000 copies took 70 ms each)."""
    from revenge.library import identity
    source = music / "A" / "one.mp3"
    copies = identity.MAX_SAME_AUDIO + 4
    for n in range(copies):
        (music / "C" / f"{n:02d}").mkdir(parents=True)
        (music / "C" / f"{n:02d}" / "copy.mp3").write_bytes(source.read_bytes())
    scan(music, catalog)
    checked: list[str] = []
    real_exists = identity.os.path.exists
    monkeypatch.setattr(identity.os.path, "exists", lambda p: checked.append(p) or real_exists(p))
    (music / "C" / "00" / "copy.mp3").rename(music / "C" / "00" / "moved.mp3")
    report = scan(music, catalog)
    assert (report.items_moved, report.items_added, report.items_removed) == (0, 1, 1)
    assert checked == []
