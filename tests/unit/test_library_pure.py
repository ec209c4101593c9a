"""Item ids, natural order, chapter building, item assembly, cursors and the folder layout."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.library.assemble import build_chapters, build_item, sort_key
from revenge.library.cursors import CursorError, decode_cursor, encode_cursor
from revenge.library.ids import fingerprint, item_id, natural_key, natural_text, relative_key
from revenge.library.layout import RootWalk, media_folder_roots, subfolder_type
from revenge.library.media_types import is_audio_name, media_type_for
from revenge.library.model import ITEM_ID_RE, MediaFile
from revenge.library.probe import EmbeddedChapter, Probe, Tags


def test_item_ids_are_stable_short_and_valid() -> None:
    assert item_id("track", "Artist/Album/01 Song.flac") == item_id("track", "Artist/Album/01 Song.flac")
    # A known value: ids must never change between versions (progress and playlists are keyed on them).
    assert item_id("track", "a/b.flac") == "mxdcrk4osuqettg2"
    assert ITEM_ID_RE.match(item_id("audiobook", ""))


@given(st.text(min_size=0, max_size=200))
def test_every_path_gives_a_valid_id(relative: str) -> None:
    assert ITEM_ID_RE.match(item_id("episode", relative))


def test_ids_differ_by_type_and_path() -> None:
    ids = {item_id(t, p) for t in ("track", "episode", "audiobook") for p in ("a/b.mp3", "a/c.mp3", "a")}
    assert len(ids) == 9


def test_relative_key_is_unicode_normalised() -> None:
    composed, decomposed = "Café/Été.flac", unicodedata.normalize("NFD", "Café/Été.flac")
    assert composed != decomposed
    assert relative_key(composed.split("/")) == relative_key(decomposed.split("/")) == composed


def test_fingerprint_changes_with_any_file_attribute() -> None:
    base = [("/a", 10, 100), ("/b", 20, 200)]
    variants = [[("/a", 10, 100)], [("/a", 11, 100), ("/b", 20, 200)], [("/a", 10, 101), ("/b", 20, 200)],
                [("/c", 10, 100), ("/b", 20, 200)], list(reversed(base))]
    assert len({fingerprint(base), *(fingerprint(v) for v in variants)}) == 1 + len(variants)
    assert fingerprint(base) == fingerprint(list(base))


def test_natural_order() -> None:
    names = ["Chapter 10.mp3", "chapter 2.mp3", "Chapter 1.mp3", "Chapter 01.mp3", "Intro.mp3",
             "Chapter 9b.mp3", "Chapter 100.mp3", "Chapter 9a.mp3"]
    assert sorted(names, key=natural_key) == [
        "Chapter 01.mp3", "Chapter 1.mp3", "chapter 2.mp3", "Chapter 9a.mp3", "Chapter 9b.mp3",
        "Chapter 10.mp3", "Chapter 100.mp3", "Intro.mp3"]


@given(st.lists(st.integers(0, 10**30), min_size=1, max_size=20))
def test_natural_text_orders_numbers_numerically(numbers: list[int]) -> None:
    ordered = sorted(numbers, key=lambda n: natural_text(f"part {n}"))
    assert ordered == sorted(numbers)


def test_build_chapters_one_per_part_on_the_joined_timeline() -> None:
    chapters = build_chapters([(44_100, "One", ()), (22_050, "Two", ()), (1, "Three", ())], 44_100,
                              one_per_part=True)
    assert [(c.index, c.title, c.start_ms, c.end_ms) for c in chapters] == [
        (0, "One", 0, 1000), (1, "Two", 1000, 1500)]  # the 1-sample part rounds to nothing


def test_build_chapters_uses_embedded_ones_made_contiguous() -> None:
    embedded = (EmbeddedChapter(100, 900, "A"), EmbeddedChapter(1000, 1800, None),
                EmbeddedChapter(1800, 1900, "C"))
    chapters = build_chapters([(48_000, "Intro file", ()), (96_000, "Book", embedded)], 48_000,
                              one_per_part=True)
    assert [(c.title, c.start_ms, c.end_ms) for c in chapters] == [
        ("Intro file", 0, 1000), ("A", 1000, 2000), ("Chapter 3", 2000, 2800), ("C", 2800, 3000)]


def test_build_chapters_for_a_track_keeps_only_embedded_ones() -> None:
    assert build_chapters([(48_000, "Song", ())], 48_000, one_per_part=False) == ()


def _probe(path: str, samples: int, rate: int = 44_100, chapters: tuple[EmbeddedChapter, ...] = (),
           **tags: object) -> Probe:
    media = MediaFile(path, 1000, 1, "mp3", "mp3", rate, 2, 128_000, samples)
    # The one-string names of the old Tags: "artist" is a one-artist list now.
    for one, many in (("artist", "artists"), ("album_artist", "album_artists"), ("genre", "genres")):
        if one in tags:
            tags[many] = (tags.pop(one),)
    return Probe(media, Tags(**tags), chapters)  # type: ignore[arg-type]


def test_build_track_and_episode() -> None:
    track = build_item("track", "A/B/01 x.mp3",
                       [_probe("/m/A/B/01 x.mp3", 44_100, artist="A", track_number=1)], folder_book=False)
    assert track.title == "01 x" and track.artist == "A" and track.track_number == 1 and track.chapters == ()
    assert track.id == item_id("track", "A/B/01 x.mp3")
    episode = build_item("episode", "Show/ep.mp3", [_probe("/p/Show/ep.mp3", 44_100, title="Ep")],
                         folder_book=False)
    assert episode.album == "Show" and episode.title == "Ep"
    loose = build_item("episode", "ep.mp3", [_probe("/p/ep.mp3", 44_100)], folder_book=False)
    assert loose.album is None


def test_build_folder_book() -> None:
    probes = [_probe("/b/Author/Book/1.mp3", 44_100, title="Start", artist="Reader", album_artist="Author"),
              _probe("/b/Author/Book/2.mp3", 88_200, rate=88_200)]
    book = build_item("audiobook", "Author/Book", probes, folder_book=True, file_fingerprint="f")
    assert book.title == "Book" and book.artist == "Author" and book.fingerprint == "f"
    assert [(c.title, c.start_ms, c.end_ms) for c in book.chapters] == [("Start", 0, 1000), ("2", 1000, 2000)]
    assert book.duration_ms == 2000 and book.track_number is None
    with pytest.raises(ValueError):
        build_item("audiobook", "x", [], folder_book=True)


def test_sort_key_groups_types_then_artist_album_disc_track() -> None:
    def track(title: str, **tags: object) -> str:
        probes = [_probe("/" + title, 10, title=title, **tags)]
        return sort_key(build_item("track", title, probes, folder_book=False))

    keys = [
        sort_key(build_item("audiobook", "Z", [_probe("/Z", 10)], folder_book=True)),
        sort_key(build_item("episode", "A", [_probe("/A", 10)], folder_book=False)),
        track("b", artist="X", album="Y", disc_number=1, track_number=2),
        track("a", artist="X", album="Y", disc_number=1, track_number=10),
        track("c", artist="X", album="Y", disc_number=2, track_number=1),
        track("z", artist="x", album="Z"),
    ]
    assert keys == sorted(keys)


def test_cursors_round_trip_and_reject_anything_else() -> None:
    cursor = encode_cursor("3\x1fsome key", "abcdefghijklmnop")
    assert decode_cursor(cursor) == ("3\x1fsome key", "abcdefghijklmnop")
    for bad in ("", "!!!", "e30", encode_cursor("k", "not-an-id"), "W10", "x" * 5000):
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_media_types() -> None:
    assert media_type_for("/m/a.FLAC", "flac") == "audio/flac"
    assert media_type_for("/m/a.m4b", "mov,mp4,m4a,3gp,3g2,mj2") == "audio/mp4"
    assert media_type_for("/m/a.opus", "ogg") == "audio/ogg"
    assert media_type_for("/m.d/noext", "mp3") == "audio/mpeg"
    assert media_type_for("/m/x", "unknown") == "application/octet-stream"
    assert is_audio_name("a.Mp3") and not is_audio_name(".mp3") and not is_audio_name("cover.jpg")


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _walk(root: Path, item_type: str) -> list[tuple[str, list[str], bool]]:
    walk = RootWalk(root, item_type)  # type: ignore[arg-type]
    return [(u.relative, [str(f.relative_to(root)) for f in u.files], u.folder_book) for u in walk.units()]


def test_layout_of_a_music_root(tmp_path: Path) -> None:
    _touch(tmp_path, "B/2.mp3", "B/10.mp3", "A/x.flac", "A/cover.jpg", ".hidden/h.mp3", "A/.h.mp3", "top.wav")
    assert _walk(tmp_path, "track") == [
        ("top.wav", ["top.wav"], False), ("A/x.flac", ["A/x.flac"], False),
        ("B/2.mp3", ["B/2.mp3"], False), ("B/10.mp3", ["B/10.mp3"], False)]


def test_layout_of_an_audiobook_root(tmp_path: Path) -> None:
    _touch(tmp_path,
           "loose.mp3",  # a file in the root is a book by itself
           "Author/Book/10.mp3", "Author/Book/2.mp3", "Author/Book/1.mp3",
           "Author/Book/extra.m4b",  # an .m4b is always its own book
           "Author/Boxed/CD1/01.mp3", "Author/Boxed/CD1/02.mp3", "Author/Boxed/CD 2/01.mp3",
           "Author/Boxed/Bonus/b.mp3",  # not a disc folder: a book of its own
           "Solo/One.m4b")
    assert _walk(tmp_path, "audiobook") == [
        ("loose.mp3", ["loose.mp3"], False),
        ("Author/Book/extra.m4b", ["Author/Book/extra.m4b"], False),
        ("Author/Book", ["Author/Book/1.mp3", "Author/Book/2.mp3", "Author/Book/10.mp3"], True),
        ("Author/Boxed", ["Author/Boxed/CD1/01.mp3", "Author/Boxed/CD1/02.mp3", "Author/Boxed/CD 2/01.mp3"],
         True),
        ("Author/Boxed/Bonus", ["Author/Boxed/Bonus/b.mp3"], True),
        ("Solo/One.m4b", ["Solo/One.m4b"], False),
    ]


def test_layout_follows_links_but_not_loops(tmp_path: Path) -> None:
    _touch(tmp_path, "real/a.mp3")
    os.symlink(tmp_path / "real", tmp_path / "linked")
    os.symlink(tmp_path, tmp_path / "real" / "loop")
    units = [u[0] for u in _walk(tmp_path, "track")]
    assert units == ["linked/a.mp3", "real/a.mp3"]


def test_layout_reports_a_missing_root(tmp_path: Path) -> None:
    walk = RootWalk(tmp_path / "nope", "track")
    assert list(walk.units()) == [] and not walk.complete and walk.problem_count == 1


def test_layout_reports_unreadable_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "ok/a.mp3", "locked/b.mp3", "z/c.mp3")
    real_scandir = os.scandir

    def scandir(path: str | Path) -> object:  # root reads chmod-0 folders: refuse like EACCES would
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr("revenge.library.layout.os.scandir", scandir)
    walk = RootWalk(tmp_path, "track")
    assert [u.relative for u in walk.units()] == ["ok/a.mp3", "z/c.mp3"]
    assert not walk.complete and walk.problems[0].path == tmp_path / "locked"
    assert "Permission denied" in walk.problems[0].reason


def test_layout_is_lazy(tmp_path: Path) -> None:
    """The first unit comes before later folders are listed (constant memory on huge libraries)."""
    _touch(tmp_path, "a/1.mp3", "b/2.mp3")
    units = RootWalk(tmp_path, "track").units()
    first = next(units)
    (tmp_path / "b" / "2.mp3").unlink()
    _touch(tmp_path, "b/3.mp3")
    assert first.relative == "a/1.mp3" and [u.relative for u in units] == ["b/3.mp3"]


@pytest.mark.parametrize(("name", "kind"), [
    ("Music", "track"), ("music", "track"), ("MUSIC", "track"),
    ("Podcasts", "episode"), ("podcast", "episode"), ("PodCasts", "episode"),
    ("Audiobooks", "audiobook"), ("audiobook", "audiobook"), ("Books", "audiobook"),
    ("AUDIOBOOKS", "audiobook"),
    ("Musik", None), ("My Podcasts", None), ("Audio Books", None), ("", None), ("Rock", None),
])
def test_subfolder_type_by_its_usual_name(name: str, kind: str | None) -> None:
    assert subfolder_type(name) == kind


def test_media_folder_roots_types_the_usual_subfolders_and_keeps_the_folder_as_music() -> None:
    media = Path("/m")
    assert media_folder_roots(media, ["Podcasts", "Music", "Other", "books", "Audiobooks"]) == {
        "track": (media, media / "Music"),
        "episode": (media / "Podcasts",),
        "audiobook": (media / "Audiobooks", media / "books"),
    }
    assert media_folder_roots(media, ["Artist A", "Artist B"]) == {"track": (media,), "episode": (),
                                                                  "audiobook": ()}


def test_a_root_inside_another_is_left_out_of_its_walk(tmp_path: Path) -> None:
    _touch(tmp_path, "Music/A/x.mp3", "Podcasts/Show/e.mp3", "loose.mp3")
    walk = RootWalk(tmp_path, "track", (tmp_path / "Podcasts", tmp_path / "Music", tmp_path / "gone"))
    assert [u.relative for u in walk.units()] == ["loose.mp3"] and walk.complete
