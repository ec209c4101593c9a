"""Stall accounting of the load simulator's play clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.loadtest.playback import PlayClock
from revenge.loadtest.playlist import SegmentRef


def timeline(*durations: float) -> tuple[SegmentRef, ...]:
    segments, at = [], 0.0
    for i, d in enumerate(durations):
        segments.append(SegmentRef(i, f"http://h/segment{i}.m4s", at, d))
        at += d
    return tuple(segments)


SIX = timeline(6.0, 6.0, 6.0, 6.0, 6.0, 6.0)


def test_the_first_segment_starts_playback_and_is_never_a_stall() -> None:
    clock = PlayClock(speed=1.0, origin=0.0)
    assert not clock.playing
    assert clock.arrived(SIX[0], now=100.0) == 0.0  # however long the start took
    assert clock.playing and clock.stalls == 0
    assert clock.due(6.0) == 106.0


def test_playback_waits_for_the_start_buffer() -> None:
    # A seek to 11.9 s: segment 1 (6..12) holds 0.1 s, not the 2.5 s a player wants to start on.
    clock = PlayClock(speed=1.0, origin=11.9, start_buffer=2.5)
    assert clock.arrived(SIX[1], 50.0) == 0.0 and not clock.playing
    assert clock.fetch_at(SIX, 2, first=1, buffer=3) is None  # keeps fetching while starting
    assert clock.arrived(SIX[2], 50.4) == 0.0 and clock.playing and clock.started_at == 50.4
    assert clock.due(SIX[3].start) == pytest.approx(50.4 + 6.1)
    # Near the end of an item the buffer can only reach the end: playback starts there.
    short = PlayClock(speed=1.0, origin=35.0, start_buffer=2.5, end=36.0)
    assert short.arrived(SIX[5], 7.0) == 0.0 and short.playing


def test_in_time_segments_do_not_stall() -> None:
    clock = PlayClock(speed=1.0, origin=0.0)
    clock.arrived(SIX[0], 10.0)
    assert clock.arrived(SIX[1], 15.999) == 0.0
    assert clock.arrived(SIX[2], 22.0) == 0.0  # exactly on its deadline: the playhead never waited
    assert clock.stalls == 0 and clock.stalled_seconds == 0.0


def test_a_late_segment_stalls_and_moves_every_later_deadline() -> None:
    clock = PlayClock(speed=1.0, origin=0.0)
    clock.arrived(SIX[0], 10.0)
    assert clock.arrived(SIX[1], 18.5) == pytest.approx(2.5)  # due at 16
    assert clock.stalls == 1
    assert clock.due(12.0) == pytest.approx(24.5)  # segment 2 now plays from 24.5
    assert clock.arrived(SIX[2], 24.0) == 0.0
    assert clock.arrived(SIX[3], 31.0) == pytest.approx(0.5)
    assert (clock.stalls, clock.stalled_seconds) == (2, pytest.approx(3.0))


def test_speed_compresses_the_deadlines() -> None:
    clock = PlayClock(speed=4.0, origin=0.0)
    clock.arrived(SIX[0], 0.0)
    assert clock.due(6.0) == 1.5
    assert clock.arrived(SIX[1], 2.0) == pytest.approx(0.5)


def test_playback_from_inside_a_segment() -> None:
    clock = PlayClock(speed=1.0, origin=10.0)  # resume at 10 s: segment 1 (6..12) plays 2 s
    clock.arrived(SIX[1], 50.0)
    assert clock.due(SIX[2].start) == 52.0
    assert clock.position(51.0, buffered_end=12.0) == 11.0


def test_the_playhead_never_passes_the_buffer() -> None:
    clock = PlayClock(speed=1.0, origin=0.0)
    assert clock.position(5.0, buffered_end=0.0) == 0.0  # still starting
    clock.arrived(SIX[0], 0.0)
    assert clock.position(3.0, buffered_end=6.0) == 3.0
    assert clock.position(9.0, buffered_end=6.0) == 6.0  # waiting for segment 1


def test_fetch_gate_keeps_the_buffer_segments_ahead() -> None:
    clock = PlayClock(speed=2.0, origin=0.0)
    assert clock.fetch_at(SIX, 0, first=0, buffer=3) is None
    assert clock.fetch_at(SIX, 3, first=0, buffer=3) is None  # before playback: the startup burst
    clock.arrived(SIX[0], 10.0)
    assert clock.fetch_at(SIX, 3, first=0, buffer=3) is None  # segments 1..3 are fetched at once
    assert clock.fetch_at(SIX, 4, first=0, buffer=3) == 13.0  # when the playhead enters segment 1
    assert clock.fetch_at(SIX, 5, first=0, buffer=3) == 16.0
    assert clock.fetch_at(SIX, 5, first=2, buffer=3) is None


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PlayClock(speed=0.0, origin=0.0)
    with pytest.raises(RuntimeError):
        PlayClock(speed=1.0, origin=0.0).due(1.0)


# Quarter seconds and power-of-two speeds: float arithmetic is exact, so "late by 0" is exactly 0.
QUARTERS = st.integers(min_value=0, max_value=48).map(lambda q: q / 4)


@given(st.lists(st.tuples(QUARTERS.filter(lambda d: d > 0), QUARTERS), min_size=1, max_size=30),
       st.sampled_from([0.5, 1.0, 2.0, 16.0]))
def test_stalls_match_the_rebuffering_recursion(steps: list[tuple[float, float]], speed: float) -> None:
    """Against the textbook recursion: segment i starts playing at max(its arrival, the end of
    segment i-1); it stalled by how much its arrival was later than that end."""
    segments = timeline(*(d for d, _ in steps))
    arrivals, at = [], 0.0
    for _, gap in steps:
        at += gap
        arrivals.append(at)
    clock = PlayClock(speed=speed, origin=0.0)
    expected_stalls, expected_total = 0, 0.0
    play_start = arrivals[0]
    clock.arrived(segments[0], arrivals[0])
    for i in range(1, len(segments)):
        previous_end = play_start + segments[i - 1].duration / speed
        late = arrivals[i] - previous_end
        if late > 0:
            expected_stalls += 1
            expected_total += late
        play_start = max(arrivals[i], previous_end)
        assert clock.arrived(segments[i], arrivals[i]) == max(0.0, late)
    assert clock.stalls == expected_stalls
    assert clock.stalled_seconds == expected_total
