"""Album sessions: a heartbeat on the album timeline as progress updates of its tracks, and what the
progress rules make of them (one play per track listened through, the next track at its offset)."""

from __future__ import annotations

from revenge.library.album_stream import spans
from revenge.playback.album_session import album_beat
from revenge.progress import rules
from revenge.progress.model import DEFAULT_POLICIES
from tests.unit.test_album_stream import track

RATE = 44100
TRACKS = [track("a", 40 * RATE), track("b", 40 * RATE), track("c", 40 * RATE)]
SPANS = spans(TRACKS)
BY_ID = {t.id: t for t in TRACKS}
POLICY = DEFAULT_POLICIES["track"]


def beat(previous_ms: int, position_ms: int, event: str = "progress", at_ms: int = 100_000):
    return album_beat(SPANS, BY_ID, previous_ms, position_ms, event, "u", "desk", at_ms)  # type: ignore[arg-type]


def test_a_position_inside_one_track_is_that_tracks_update() -> None:
    b = beat(1_000, 41_500)
    assert b.track.id == "b" and b.offset_ms == 1_500
    b = beat(41_000, 45_000)
    assert [(u.item_id, u.position_ms, u.event) for u in b.updates] == [("b", 5_000, "progress")]


def test_playing_on_into_the_next_track_ends_the_previous_listen_and_starts_the_next() -> None:
    b = beat(38_000, 43_000, at_ms=100_000)
    assert [(u.item_id, u.position_ms, u.event, u.event_ts_ms) for u in b.updates] == [
        ("a", 40_000, "stop", 97_000), ("b", 0, "start", 97_000), ("b", 3_000, "progress", 100_000)]
    # Through the rules: track a, heard from 0 over 40 s of wall clock, counts once; b is at 3 s.
    a = rules.apply_update(None, rules.make_update("u", "a", "track", 40_000, 0, "start", "desk", None,
                                                  57_000), POLICY)
    a = rules.apply_update(a, b.updates[0], POLICY)
    assert a.play_count == 1 and a.completed
    state_b = rules.apply_updates(None, b.updates[1:], POLICY)
    assert state_b is not None and state_b.position_ms == 3_000 and state_b.listened_ms == 3_000
    assert state_b.play_count == 0


def test_a_seek_or_a_move_back_starts_the_new_track_at_its_offset_and_leaves_the_old_one() -> None:
    for previous, position, event in [(10_000, 85_000, "seek"), (85_000, 10_000, "progress"),
                                      (10_000, 45_000, "start")]:
        b = beat(previous, position, event)
        assert len(b.updates) == 1 and b.updates[0].event == "start"
        assert b.updates[0].item_id == b.track.id and b.updates[0].position_ms == b.offset_ms


def test_the_join_time_scales_with_the_playback_rate() -> None:
    b = album_beat(SPANS, BY_ID, 39_000, 44_000, "progress", "u", "desk", 100_000, playback_rate=2.0)
    assert b.updates[0].event_ts_ms == 100_000 - 2_000
