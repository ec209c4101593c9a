"""Declared BANDWIDTH / AVERAGE-BANDWIDTH from measured segments and the codec model. All pure."""

from __future__ import annotations

from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.hls import fmp4
from revenge.hls.bandwidth import (
    BOUND_SLACK_FRAMES,
    LOSSY_BOUND,
    PCM_TO_FLAC,
    PayloadRates,
    declared_bandwidth,
    payload_rates,
)
from revenge.hls.plan import plan_segments
from revenge.hls.profiles import PROFILES, output_format

# A toy grid in round numbers: 1000 samples/s, 100-sample frames, 10 frames (1 s) per segment.
# media_segment_overhead(n) = 104 + 4n: 144 bytes for 10 frames, 124 for 5.
PLAN = plan_segments(2500, 1000, 100, 0, 1.0)  # 1 s, 1 s, 0.5 s (5 frames)
RATES = PayloadRates(mean=Fraction(1000), bound=Fraction(1100), slack=Fraction(50))


def test_nothing_measured_predicts_every_segment_from_the_model() -> None:
    # Mean: 1144 + 1144 + 624 bytes over 2.5 s. Bound: the last segment, (550 + 50 + 124) / 0.5 s.
    assert declared_bandwidth(PLAN, RATES, [0, 0, 0]) == (11_584, ceil(8 * 2912 / Fraction(5, 2)))


def test_measured_segments_count_with_their_real_size() -> None:
    # Segment 1 measured quieter than the model: the average drops by what it saved.
    peak, average = declared_bandwidth(PLAN, RATES, [0, 644, 0])
    assert average == ceil(8 * (1144 + 644 + 624) / Fraction(5, 2))
    assert peak == 11_584  # the unmeasured last segment's bound still stands
    # A measured segment hotter than the bound raises the peak to its real rate.
    assert declared_bandwidth(PLAN, RATES, [2000, 0, 0])[0] == 16_000


def test_everything_measured_is_exact() -> None:
    sizes = [1000, 700, 300]
    peak, average = declared_bandwidth(PLAN, RATES, sizes)
    assert peak == ceil(max(8 * 1000, 8 * 700, 8 * 300 / Fraction(1, 2)))  # 4800 for the last
    assert peak == 8000
    assert average == ceil(8 * 2000 / Fraction(5, 2))


@given(total=st.integers(1, 200_000), priming=st.sampled_from([0, 312, 1024]),
       data=st.data())
def test_equals_a_segment_by_segment_account(total: int, priming: int, data: st.DataObject) -> None:
    plan = plan_segments(total, 48000, 1024, priming, 6.0)
    rates = PayloadRates(Fraction(16_000), Fraction(17_600), Fraction(700))
    sizes = []
    for s in plan.segments():
        least = fmp4.media_segment_overhead(plan.frames_in(s))
        sizes.append(data.draw(st.one_of(st.just(0), st.integers(least, least + 200_000))))
    peak, total_bytes = Fraction(0), Fraction(0)
    for s, size in zip(plan.segments(), sizes, strict=True):
        seconds, least = plan.duration(s), fmp4.media_segment_overhead(plan.frames_in(s))
        if size:
            peak, total_bytes = max(peak, 8 * size / seconds), total_bytes + size
        else:
            peak = max(peak, 8 * (rates.bound * seconds + rates.slack + least) / seconds)
            total_bytes += rates.mean * seconds + least
    assert declared_bandwidth(plan, rates, sizes) == (ceil(peak), ceil(8 * total_bytes / plan.total_duration))


@pytest.mark.parametrize("sizes", [[0, 0], [0, 0, 0, 0], [143, 0, 0], [-1, 0, 0]])
def test_refuses_what_cannot_be_the_plan_s_sizes(sizes: list[int]) -> None:
    with pytest.raises(ValueError):
        declared_bandwidth(PLAN, RATES, sizes)


def test_lossy_model_is_the_nominal_rate_with_a_bound() -> None:
    fmt = output_format(PROFILES["aac-128"], 44100, 2)
    rates = payload_rates(fmt, "flac", 900_000)
    assert rates.mean == 16_000  # bytes per second
    assert rates.bound == 16_000 * LOSSY_BOUND
    assert rates.slack == 16_000 * Fraction(1024, 44100) * BOUND_SLACK_FRAMES
    mono = payload_rates(output_format(PROFILES["opus-128"], 48000, 1), "mp3", 128_000)
    assert mono.mean == 8_000


def test_flac_model_follows_the_source_and_never_passes_pcm() -> None:
    fmt = output_format(PROFILES["flac"], 44100, 2)
    pcm = Fraction(44100 * 2 * 16, 8)
    assert payload_rates(fmt, "flac", 800_000).mean == 100_000
    assert payload_rates(fmt, "pcm_s16le", 1_411_200).mean == pcm * PCM_TO_FLAC
    assert payload_rates(fmt, "alac", 5_000_000).mean == pcm  # a source rate above PCM: tags, pictures
    assert payload_rates(fmt, "flac", 800_000).bound > pcm
