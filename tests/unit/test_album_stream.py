"""An album as one timeline: track spans, the synthetic album item, positions mapped back to tracks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.library.album_stream import TrackSpan, album_item, locate, spans
from revenge.library.model import Item, MediaFile


def track(item_id: str, samples: int, rate: int = 44100, fingerprint: str = "f") -> Item:
    media = MediaFile(f"/m/{item_id}.flac", 1, 1, "flac", "flac", rate, 2, 1000, samples)
    return Item(item_id, "track", item_id.upper(), "Artist", "Album", "Artist", 1, 1, None, (media,), (),
                fingerprint)


def test_spans_meet_and_rescale_to_the_first_tracks_rate() -> None:
    tracks = [track("a", 44100 * 3), track("b", 48000 * 2, rate=48000), track("c", 22050, rate=22050)]
    s = spans(tracks)
    assert [(x.item_id, x.start_ms, x.end_ms) for x in s] == [("a", 0, 3000), ("b", 3000, 5000),
                                                            ("c", 5000, 6000)]
    assert spans([]) == []


def test_the_album_item_is_every_track_in_order_with_a_chapter_each() -> None:
    tracks = [track("a", 44100 * 3), track("b", 44100)]
    album = album_item("albumid", "Album", tracks)
    assert album.id == "albumid" and [f.path for f in album.files] == ["/m/a.flac", "/m/b.flac"]
    assert [(c.title, c.start_ms, c.end_ms) for c in album.chapters] == [("A", 0, 3000), ("B", 3000, 4000)]
    assert album.duration_ms == 4000
    # The fingerprint follows every track's (a retagged or replaced track gives new segment keys).
    changed = album_item("albumid", "Album", [tracks[0], track("b", 44100, fingerprint="g")])
    assert changed.fingerprint != album.fingerprint
    assert album_item("albumid", "Album", list(reversed(tracks))).fingerprint != album.fingerprint
    with pytest.raises(ValueError):
        album_item("albumid", "Album", [])


def test_locate_maps_a_position_to_the_track_and_its_offset() -> None:
    s = [TrackSpan("a", "A", 0, 3000), TrackSpan("b", "B", 3000, 5000), TrackSpan("c", "C", 5000, 5500)]
    assert locate(s, -5) == ("a", 0)
    assert locate(s, 0) == ("a", 0)
    assert locate(s, 2999) == ("a", 2999)
    assert locate(s, 3000) == ("b", 0)  # a boundary is the next track's start
    assert locate(s, 4200) == ("b", 1200)
    assert locate(s, 5499) == ("c", 499)
    assert locate(s, 9999) == ("c", 500)  # past the end: the last track's end
    with pytest.raises(ValueError):
        locate([], 0)


@given(st.lists(st.integers(1, 10_000_000), min_size=1, max_size=30), st.integers(-10, 10**9))
def test_locate_inverts_the_spans(lengths: list[int], position: int) -> None:
    tracks = [track(f"t{i}", n) for i, n in enumerate(lengths)]
    s = spans(tracks)
    item_id, offset = locate(s, position)
    span = next(x for x in s if x.item_id == item_id)
    assert 0 <= offset <= span.end_ms - span.start_ms
    if 0 <= position < s[-1].end_ms:
        assert span.start_ms + offset == position
