"""The watcher's pure rules: a batch of filesystem events → the folders to rescan, and what a rescan
of a folder owns (``revenge.library.changes``)."""

from __future__ import annotations

from pathlib import Path

from revenge.library.changes import Target, covers, rescan_targets
from revenge.library.ids import unit_content

MUSIC = Path("/lib/music")
BOOKS = Path("/lib/books")
PODS = Path("/lib/music/Podcasts")  # a root inside another
ROOTS = [(MUSIC, "track"), (BOOKS, "audiobook"), (PODS, "episode")]
DIRS = {MUSIC / "New Album", MUSIC / "New Album" / "CD1", BOOKS / "Author" / "Book" / "CD2",
        BOOKS / "Author" / "Book", MUSIC / "A"}


def targets(*events: tuple[str, str]) -> list[Target]:
    return rescan_targets(events, ROOTS, lambda p: p in DIRS)  # type: ignore[arg-type]


def t(root: Path, folder: str, deep: bool) -> Target:
    kind = {MUSIC: "track", BOOKS: "audiobook", PODS: "episode"}[root]
    return Target(root, kind, tuple(folder.split("/")) if folder else (), deep)  # type: ignore[arg-type]


def test_a_500_file_copy_into_a_new_folder_is_one_rescan_of_it() -> None:
    events = [("added", str(MUSIC / "New Album"))]
    events += [("added", str(MUSIC / "New Album" / f"{n:03d}.mp3")) for n in range(500)]
    events += [("modified", str(MUSIC / "New Album" / f"{n:03d}.mp3")) for n in range(500)]
    events += [("added", str(MUSIC / "New Album" / "CD1" / "x.flac"))]
    assert targets(*events) == [t(MUSIC, "New Album", True)]


def test_files_rescan_their_folder_only_and_each_folder_once() -> None:
    assert targets(("modified", str(MUSIC / "A" / "B" / "1.mp3")),
                   ("added", str(MUSIC / "A" / "B" / "2.mp3")), ("deleted", str(MUSIC / "C" / "3.ogg")),
                   ("modified", str(MUSIC / "top.mp3"))) == [
        t(MUSIC, "", False), t(MUSIC, "A/B", False), t(MUSIC, "C", False)]


def test_a_move_between_folders_rescans_both_in_one_batch() -> None:
    assert targets(("deleted", str(MUSIC / "A" / "x.mp3")), ("added", str(MUSIC / "B" / "x.mp3"))) == [
        t(MUSIC, "A", False), t(MUSIC, "B", False)]


def test_a_vanished_name_that_is_no_audio_file_may_have_been_a_folder() -> None:
    assert targets(("deleted", str(MUSIC / "Old Album"))) == [t(MUSIC, "Old Album", True)]
    cover = MUSIC / "Old Album" / "cover.jpg"
    assert targets(("deleted", str(cover))) == [t(MUSIC, "Old Album/cover.jpg", True)]


def test_hidden_names_and_paths_outside_every_root_change_nothing() -> None:
    assert targets(("added", str(MUSIC / ".sync" / "a.mp3")), ("added", str(MUSIC / "A" / ".a.mp3.tmp")),
                   ("added", "/elsewhere/a.mp3"), ("added", "/lib/musicals/a.mp3")) == []


def test_the_innermost_root_owns_a_path() -> None:
    assert targets(("added", str(PODS / "Show" / "ep1.mp3"))) == [t(PODS, "Show", False)]


def test_the_root_itself_is_rescanned_whole() -> None:
    assert targets(("deleted", str(MUSIC)), ("added", str(MUSIC / "A" / "1.mp3"))) == [t(MUSIC, "", True)]


def test_a_disc_folder_of_a_book_stands_for_the_book() -> None:
    book = t(BOOKS, "Author/Book", False)
    assert targets(("added", str(BOOKS / "Author" / "Book" / "CD2" / "07.mp3"))) == [book]
    assert targets(("added", str(BOOKS / "Author" / "Book" / "CD2"))) == [book]
    assert targets(("added", str(BOOKS / "Author" / "Book"))) == [t(BOOKS, "Author/Book", True)]
    # In a music root a "CD1" folder is a folder like any other.
    disc = MUSIC / "New Album" / "CD1" / "1.mp3"
    assert targets(("added", str(disc))) == [t(MUSIC, "New Album/CD1", False)]


def test_what_a_shallow_rescan_owns() -> None:
    folder = t(MUSIC, "A", False)
    assert covers(folder, "A/1.mp3")
    assert not covers(folder, "A/B/1.mp3") and not covers(folder, "AB/1.mp3") and not covers(folder, "A")
    assert covers(t(MUSIC, "", False), "top.mp3") and not covers(t(MUSIC, "", False), "A/1.mp3")
    book = t(BOOKS, "Author/Book", False)
    assert covers(book, "Author/Book") and covers(book, "Author/Book/extra.m4b")
    assert covers(book, "Author/Book/CD1/part.m4b")
    assert not covers(book, "Author/Book/Extras") and not covers(book, "Author")


def test_what_a_deep_rescan_owns() -> None:
    deep = t(MUSIC, "A", True)
    assert covers(deep, "A/1.mp3") and covers(deep, "A/B/C/1.mp3") and covers(deep, "A")
    assert not covers(deep, "AB/1.mp3")
    assert covers(t(MUSIC, "", True), "anything/at/all.mp3")


def test_an_items_content_is_its_files_in_order_and_unknown_when_one_is() -> None:
    assert unit_content(["abc"]) == "abc"
    assert unit_content(["a", "b"]) == unit_content(["a", "b"]) != unit_content(["b", "a"])
    assert unit_content(["a", None]) is None and unit_content([]) is None
