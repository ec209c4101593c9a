"""The derived tables follow the items as they are stored, changed and removed (a real SQLite catalog,
probes built by hand), and the pure helpers of the browse queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from revenge.library import browse
from revenge.library.assemble import build_item
from revenge.library.catalog import MAX_QUERY_WORDS, Catalog
from revenge.library.cursors import CursorError
from revenge.library.grouping import genre_ref
from revenge.library.model import MediaFile
from revenge.library.probe import Probe
from revenge.library.tags import Tags


def _put(catalog: Catalog, relative: str, generation: int = 0, **tags: object) -> str:
    media = MediaFile(f"/m/{relative}", 1000, 1, "flac", "flac", 44_100, 2, 900_000, 44_100)
    probe = Probe(media, Tags(**tags), ())  # type: ignore[arg-type]
    item = build_item("track", relative, [probe], folder_book=False)
    catalog.put_item(item, [probe], "/m", relative, generation)
    return item.id


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


def _albums(catalog: Catalog) -> dict[str, int]:
    return {a.name: a.track_count for a in browse.list_albums(catalog, limit=500)[0]}


def test_a_track_moving_to_another_album_updates_both(catalog: Catalog) -> None:
    _put(catalog, "a.flac", title="One", artists=("X",), album="First", genres=("Rock",))
    _put(catalog, "b.flac", title="Two", artists=("X",), album="First", genres=("Rock",))
    catalog.commit()
    assert _albums(catalog) == {"First": 2}
    _put(catalog, "b.flac", title="Two", artists=("Y",), album="Second", genres=("Jazz",))
    catalog.commit()
    assert _albums(catalog) == {"First": 1, "Second": 1}
    genres = {g.name: (g.album_count, g.track_count) for g in browse.list_genres(catalog)[0]}
    assert genres == {"Rock": (1, 1), "Jazz": (1, 1)}
    # The search rows were replaced, not added to: one hit each.
    assert [t.item.title for t in browse.search(catalog, "two").tracks] == ["Two"]
    assert [a.name for a in browse.search(catalog, "y").artists] == ["Y"]


def test_removing_the_last_track_removes_album_artist_and_genre(catalog: Catalog) -> None:
    kept = _put(catalog, "a.flac", title="Keep", artists=("X",), album="Stay")
    gone = _put(catalog, "b.flac", title="Go", artists=("Z",), album="Leave", genres=("Noise",))
    catalog.commit()
    catalog.remove_item(gone)
    catalog.commit()
    assert _albums(catalog) == {"Stay": 1}
    assert [a.name for a in browse.list_artists(catalog)[0]] == ["X"]
    assert browse.list_genres(catalog)[0] == []
    assert browse.search(catalog, "go") == browse.SearchResult([], [], [])
    # Unseen by a scan: the same, through remove_unseen's bulk delete.
    generation = catalog.begin_scan()
    assert catalog.remove_unseen(generation, ["/m"], ["/m"]) == 1
    catalog.commit()
    assert _albums(catalog) == {} and browse.list_artists(catalog)[0] == []
    assert catalog.get_item(kept) is None


def test_no_change_stores_nothing_derived(catalog: Catalog) -> None:
    _put(catalog, "a.flac", title="One", artists=("X",), album="First")
    catalog.commit()
    before = browse.list_albums(catalog)[0]
    catalog.touch_item(before[0].id, [], 2)  # what a rescan of an unchanged item does
    catalog.commit()
    assert browse.list_albums(catalog)[0] == before


def test_fts_query_quotes_every_word_as_a_prefix() -> None:
    assert browse.fts_query("Beyoncé  LEMON") == '"beyoncé"* "lemon"*'
    assert browse.fts_query('x" OR y*') == '"x"* "or"* "y"*'
    assert browse.fts_query(" -*: ") is None
    assert browse.fts_query(" ".join(["w"] * 20)) == " ".join(['"w"*'] * MAX_QUERY_WORDS)
    assert browse.fts_query("_") is None and browse.fts_query("a_b") == '"a"* "b"*'  # split as FTS5 does


def test_list_cursors_round_trip_and_refuse_others() -> None:
    cursor = browse.encode_list_cursor("year", 0, [1999, "kind of blue", "a" * 16])
    assert browse.decode_list_cursor(cursor, "year", 3) == (0, [1999, "kind of blue", "a" * 16])
    for bad, kind, width in ((cursor, "newest", 3), (cursor, "year", 2), ("!!", "year", 3),
                             (browse.encode_list_cursor("year", -1, [1, "x", "a" * 16]), "year", 3),
                             (browse.encode_list_cursor("year", 0, [True, "x", "a" * 16]), "year", 3),
                             (browse.encode_list_cursor("year", 0, [1, "x", "not-an-id"]), "year", 3)):
        with pytest.raises(CursorError):
            browse.decode_list_cursor(bad, kind, width)


def test_a_genre_is_named_as_most_of_its_tracks_spell_it_and_counts_albums_once(catalog: Catalog) -> None:
    _put(catalog, "a.flac", title="One", artists=("X",), album="First", genres=("Hip-Hop",))
    _put(catalog, "b.flac", title="Two", artists=("X",), album="First", genres=("hip-hop", "Jazz"))
    _put(catalog, "c.flac", title="Three", artists=("X",), album="Second", genres=("hip-hop",))
    catalog.commit()
    genres = {g.name: (g.album_count, g.track_count) for g in browse.list_genres(catalog)[0]}
    assert genres == {"hip-hop": (2, 3), "Jazz": (1, 1)}
    _put(catalog, "d.flac", title="Four", artists=("X",), album="Third", genres=("Hip-Hop",))
    catalog.commit()  # a tie: the greater spelling, whatever the order the tracks came in
    genres = {g.name: (g.album_count, g.track_count) for g in browse.list_genres(catalog)[0]}
    assert genres == {"hip-hop": (3, 4), "Jazz": (1, 1)}


def test_genre_filter_takes_an_id_or_a_name() -> None:
    gid = genre_ref("Jazz")[0]
    assert browse.genre_id_of(gid) == gid and browse.genre_id_of("jazz") == gid


def test_other_artist_separators_rebuild_the_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    catalog = Catalog(path)
    item_id = _put(catalog, "a.flac", title="One", artists=("A; B",), album="First")
    catalog.close()
    same = Catalog(path)
    assert same.get_item(item_id) is not None  # reopened as built: kept
    same.close()
    split = Catalog(path, artist_separators=(";",))
    assert split.get_item(item_id) is None and split.count_items()["track"] == 0  # the next scan refills it
    split.close()


def test_item_list_query_uses_the_full_text_index(catalog: Catalog) -> None:
    # Word prefixes with diacritics folded, as GET /search: a LIKE '%…%' would miss "beyonce"
    # and find "lemon" inside "Melemon".
    hit = _put(catalog, "a.flac", title="Lemonade", artists=("Beyoncé",), album="Lemonade",
               album_artists=("Queen B",), genres=("R&B",))
    _put(catalog, "b.flac", title="Melemon", artists=("Other",))
    catalog.commit()

    def ids(q: str) -> list[str]:
        return [i.id for i in catalog.list_items(q=q)[0]]

    assert ids("beyonce lemon") == [hit] and ids("BEYON") == [hit]
    assert ids("queen") == [hit] and ids("r&b") == [hit]  # album artist and genre too
    assert ids("emon") == [] and ids("_%") == []
    catalog.remove_item(hit)
    catalog.commit()
    assert ids("lemon") == []


def test_rank_played_sums_plays_and_takes_the_latest_play_per_album() -> None:
    played = [("t1", 500, 1), ("t2", 900, 0), ("t3", 700, 5), ("t4", 100, 2), ("t5", 800, 3)]
    album_of = {"t1": "A", "t2": "A", "t3": "B", "t4": "A", "t5": "C"}  # t… not in the catalog: left out
    assert browse.rank_played(played, album_of, "recently_played") == [((-900,), "A"), ((-800,), "C"),
                                                                       ((-700,), "B")]
    assert browse.rank_played(played, album_of, "frequent") == [((-5, -700), "B"), ((-3, -900), "A"),
                                                                ((-3, -800), "C")]
    assert browse.rank_played([("t2", 900, 0)], album_of, "frequent") == []


def test_played_albums_page_filter_and_refuse_other_cursors(catalog: Catalog) -> None:
    ids = {name: _put(catalog, f"{name}.flac", title=name, artists=("X",), album=f"Album {name}",
                      year=year, genres=(genre,))
           for name, year, genre in (("a", 1990, "Rock"), ("b", 2000, "Jazz"), ("c", 2010, "Rock"))}
    catalog.commit()
    played = [(ids["a"], 300, 1), (ids["b"], 200, 7), (ids["c"], 100, 3), ("zzzzzzzzzzzzzzzz", 900, 9)]

    def names(**kw: object) -> list[str]:
        out, cursor = [], None
        while True:
            page, cursor = browse.list_played_albums(catalog, played, cursor=cursor, **kw)  # type: ignore[arg-type]
            out += [a.name for a in page]
            if cursor is None:
                return out

    assert names(sort="frequent", limit=1) == ["Album b", "Album c", "Album a"]
    assert names(sort="recently_played", limit=2) == ["Album a", "Album b", "Album c"]
    assert names(sort="recently_played", limit=1, genre="rock") == ["Album a", "Album c"]
    assert names(sort="frequent", limit=1, year_from=1995) == ["Album b", "Album c"]
    _, cursor = browse.list_played_albums(catalog, played, sort="frequent", limit=1)
    with pytest.raises(CursorError):
        browse.list_played_albums(catalog, played, sort="recently_played", cursor=cursor)


def test_a_broad_search_ranks_the_first_matches_only(catalog: Catalog,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(6):  # stored in this order: "Kalo 0" is first in catalog order
        _put(catalog, f"k{n}.flac", title=f"Kalo {n}" + (" kalo kalo" if n == 4 else ""), artists=("A",))
    catalog.commit()
    assert browse.search(catalog, "kal", 1).tracks[0].item.title == "Kalo 4 kalo kalo"  # best of all six
    monkeypatch.setattr(browse, "SEARCH_RANKED", 3)
    found = [t.item.title for t in browse.search(catalog, "kal", 2).tracks]
    assert len(found) == 2 and "Kalo 4 kalo kalo" not in found  # ranked among the first three only
    assert len(browse.search(catalog, "kal", 5).tracks) == 5  # a larger page ranks as many as it asks


def test_tracks_by_offset_agree_with_a_plain_offset_across_anchors_and_follow_changes(
        catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    from revenge.library import paging
    monkeypatch.setattr(paging, "ANCHOR_EVERY", 7)  # several anchors from a few dozen tracks
    for n in range(40):
        _put(catalog, f"t{n:02d}.flac", title=f"Song {(n * 17) % 40:02d}")
    catalog.commit()

    def plain(offset: int, size: int) -> list[str]:
        with catalog.reading() as db:
            return [r[0] for r in db.execute("SELECT id FROM items WHERE type = 'track' "
                                             "ORDER BY sort_key, id LIMIT ? OFFSET ?", (size, offset))]

    for offset in (0, 1, 6, 7, 8, 13, 14, 30, 39, 40, 41, 100):
        for size in (1, 5, 20):
            assert [t.id for t in paging.summaries_at(catalog, offset, size)] == plain(offset, size)
    # A track added before the others moves every page: the anchors follow the catalog.
    first = _put(catalog, "new.flac", title="AAA first")
    catalog.commit()
    assert [t.id for t in paging.summaries_at(catalog, 0, 1)] == [first]
    assert [t.id for t in paging.summaries_at(catalog, 7, 20)] == plain(7, 20)


def test_a_summary_read_in_one_query_equals_the_one_made_from_the_item_and_its_tags(
        catalog: Catalog) -> None:
    from revenge.library import paging
    from revenge.library.track_summary import summary_of_track
    _put(catalog, "a.flac", title="One", artists=("X", "Y; \x1e odd"), album="First", genres=("Rock", "Pop"),
         year=1999, bpm=120.5, comment="c", title_sort="One, The", mb_recording_id="rec",
         rg_track_gain=-6.5, rg_track_peak=0.9, rg_album_gain=-7.0, rg_album_peak=0.95)
    _put(catalog, "b.flac", title="Two")  # no artist, album, genre or gain
    catalog.commit()
    listed = paging.summaries_at(catalog, 0, 10)
    with catalog.reading() as db:
        made = [summary_of_track(t) for t in browse._tracks(catalog, db, [s.id for s in listed])]
    assert listed == made and len(listed) == 2
    one = next(s for s in listed if s.title == "One")
    assert [r.name for r in one.artists] == ["X", "Y; \x1e odd"] and one.genres == ("Rock", "Pop")


def test_the_played_albums_follow_a_track_retagged_into_another_album(catalog: Catalog) -> None:
    track = _put(catalog, "a.flac", title="One", artists=("X",), album="First")
    catalog.commit()
    played = [(track, 1000, 2)]
    assert [a.name for a in browse.list_played_albums(catalog, played, sort="frequent")[0]] == ["First"]
    _put(catalog, "a.flac", title="One", artists=("X",), album="Second")
    catalog.commit()
    assert [a.name for a in browse.list_played_albums(catalog, played, sort="frequent")[0]] == ["Second"]
