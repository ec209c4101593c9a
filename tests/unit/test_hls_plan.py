"""The segment plan: exact tiling on the codec frame grid, exact EXTINF, target duration."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.hls.plan import (
    SegmentPlan,
    converted_count,
    extinf_text,
    frames_per_segment,
    plan_segments,
    target_duration,
)

RATES = st.sampled_from([8000, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000])
CODECS = st.sampled_from([(1024, 1024), (960, 312), (4096, 0)])  # AAC, Opus, FLAC


@given(total=st.integers(1, 3 * 3600 * 192000), rate=RATES, codec=CODECS,
       target=st.sampled_from([2.0, 4.0, 6.0, 10.0]))
def test_segments_tile_the_timeline_on_the_frame_grid(total: int, rate: int, codec: tuple[int, int],
                                                      target: float) -> None:
    frame, priming = codec
    plan = plan_segments(total, rate, frame, priming, target)
    n = plan.count
    some = (*range(3), n // 2, n // 2 + 1, *range(n - 3, n))
    segments = plan.segments() if n <= 2000 else [plan.segment(i) for i in some if 0 <= i < n]
    if plan.count <= 2000:
        # No gap, no overlap: presentation and media ranges are contiguous from 0 to the end.
        assert segments[0].start == 0 and segments[0].media_start == 0
        assert segments[-1].end == total
        assert segments[-1].media_end == ceil((priming + total) / frame) * frame
        for a, b in itertools.pairwise(segments):
            assert a.end == b.start and a.media_end == b.media_start
        assert sum(plan.duration(s) for s in segments) == Fraction(total, rate)
    for s in segments:
        assert s.media_start % frame == 0 and s.media_end % frame == 0
        assert s.samples > 0
        # Every segment but the last holds exactly frames_per_segment frames; none holds more.
        frames = (s.media_end - s.media_start) // frame
        assert frames == plan.frames_per_segment or (s.index == plan.count - 1 and frames > 0)
        # Media and presentation agree: presentation = media - priming, clipped to the audio.
        assert s.start == max(0, s.media_start - priming) and s.end == min(total, s.media_end - priming)
    # The plan is a pure function: asking again (in any order) gives the same segments.
    again = plan_segments(total, rate, frame, priming, target)
    assert again.segment(n - 1) == plan.segment(n - 1) and again.segment(n // 2) == plan.segment(n // 2)


@given(total=st.integers(1, 10_000_000), rate=RATES, codec=CODECS)
def test_extinf_sum_matches_duration_and_target_duration_bounds_every_extinf(
        total: int, rate: int, codec: tuple[int, int]) -> None:
    frame, priming = codec
    plan = plan_segments(total, rate, frame, priming, 6.0)
    written = [Fraction(extinf_text(plan.duration(s))) for s in plan.segments()]
    # Six decimals, rounded: the sum of what we write is within half a microsecond per segment.
    assert abs(sum(written) - Fraction(total, rate)) <= Fraction(plan.count, 2_000_000)
    assert all(w <= target_duration(plan) for w in written)
    assert target_duration(plan) == max(1, ceil(max(written)))


def test_frames_per_segment_matches_the_issue_grid() -> None:
    assert frames_per_segment(6.0, 44100, 1024) == 258  # 5.991 s
    assert frames_per_segment(6.0, 48000, 1024) == 281  # 5.995 s (282 would be 6.016 s: TARGETDURATION 7)
    assert frames_per_segment(6.0, 48000, 960) == 300  # 6.000 s exactly
    assert frames_per_segment(6.0, 44100, 4096) == 64
    assert frames_per_segment(0.001, 44100, 1024) == 1


def test_aac_plan_at_44100_and_the_short_last_segment() -> None:
    plan = plan_segments(13 * 44100 + 5, 44100, 1024, 1024, 6.0)
    assert plan.count == 3
    # Segment 0 carries the priming frame: one frame (1024 samples) less presented.
    assert [extinf_text(plan.duration(s)) for s in plan.segments()] == ["5.967528", "5.990748", "1.041837"]
    assert target_duration(plan) == 6


def test_opus_priming_sits_in_segment_zero() -> None:
    plan = plan_segments(48000 * 20, 48000, 960, 312, 6.0)
    first, second = plan.segment(0), plan.segment(1)
    assert (first.media_start, first.media_end, first.start, first.end) == (0, 288000, 0, 288000 - 312)
    assert (second.media_start, second.start) == (288000, 288000 - 312)
    assert plan.segment(plan.count - 1).end == 48000 * 20


def test_extinf_text_rounds_half_up_with_six_decimals() -> None:
    assert extinf_text(Fraction(1, 3)) == "0.333333"
    assert extinf_text(Fraction(2, 3)) == "0.666667"
    assert extinf_text(Fraction(5, 10_000_000)) == "0.000001"
    assert extinf_text(Fraction(6)) == "6.000000"
    assert extinf_text(Fraction(258 * 1024, 44100), places=5) == "5.99075"


@pytest.mark.parametrize(("samples", "rin", "rout", "expected"), [
    (44100, 44100, 44100, 44100),
    (22050, 22050, 44100, 44100),
    (96001, 96000, 48000, 48001),  # ceil(48000.5)
    (573423, 44100, 48000, 624134),  # ceil(624133.87)
    (1, 8000, 48000, 6),
])
def test_converted_count_is_the_ceiling(samples: int, rin: int, rout: int, expected: int) -> None:
    assert converted_count(samples, rin, rout) == expected


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SegmentPlan(0, 44100, 1024, 0, 258)
    with pytest.raises(ValueError):
        SegmentPlan(100, 44100, 1024, 2048, 1)  # a segment shorter than the priming
    with pytest.raises(IndexError):
        plan_segments(1000, 44100, 1024, 0, 6.0).segment(1)
