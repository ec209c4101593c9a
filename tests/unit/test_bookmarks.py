"""Pure bookmark rules: ids, position clamping, note limits, order, stored encoding."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.playback import bookmarks
from revenge.playback.bookmarks import Bookmark, BookmarkRejected

ITEM = "abcdefghijklmnop"


def test_ids_are_random_url_safe_and_recognised() -> None:
    ids = {bookmarks.new_bookmark_id() for _ in range(2000)}
    assert len(ids) == 2000
    for bookmark_id in ids:
        assert bookmarks.is_valid_bookmark_id(bookmark_id)
        assert len(bookmark_id) == 16
    for bad in ("", "short", "a" * 17, "a" * 15 + "/", "a" * 15 + ".", "../../etc/passwd"):
        assert not bookmarks.is_valid_bookmark_id(bad)


def test_position_is_clamped_to_the_item() -> None:
    assert bookmarks.position_ms(0, 60_000) == 0
    assert bookmarks.position_ms(12.3456, 60_000) == 12_346
    assert bookmarks.position_ms(61, 60_000) == 60_000
    assert bookmarks.position_ms(1e300, 60_000) == 60_000


@pytest.mark.parametrize("bad", [-0.001, -5, math.nan, math.inf, -math.inf])
def test_negative_and_non_finite_positions_are_refused(bad: float) -> None:
    with pytest.raises(BookmarkRejected) as info:
        bookmarks.position_ms(bad, 60_000)
    assert info.value.field == "position_seconds"


def test_note_limits() -> None:
    assert bookmarks.check_note("") == ""
    assert bookmarks.check_note("x" * 1000) == "x" * 1000
    assert bookmarks.check_note("🎧" * 1000) == "🎧" * 1000  # characters, not bytes
    assert bookmarks.check_note("line 1\nline 2") == "line 1\nline 2"
    for bad in ("x" * 1001, "a\x00b"):
        with pytest.raises(BookmarkRejected) as info:
            bookmarks.check_note(bad)
        assert info.value.field == "note"


def test_order_is_position_then_creation_then_id() -> None:
    spec = (("a", 500, 3), ("b", 100, 9), ("c", 100, 2), ("d", 100, 2), ("e", 0, 99))
    marks = [Bookmark("1", ITEM, c * 16, position, "", created) for c, position, created in spec]
    shuffled = marks[:]
    random.Random(1).shuffle(shuffled)
    assert [b.id[0] for b in bookmarks.ordered(shuffled)] == ["e", "c", "d", "b", "a"]


@given(st.integers(0, 10**12), st.text(max_size=1000), st.integers(0, 2**53))
def test_encoding_round_trips(position: int, note: str, created: int) -> None:
    mark = Bookmark("1", ITEM, bookmarks.new_bookmark_id(), position, note, created)
    assert Bookmark.decode("1", ITEM, mark.id, mark.encode()) == mark
    assert Bookmark.decode("1", ITEM, mark.id, mark.encode().decode()) == mark
