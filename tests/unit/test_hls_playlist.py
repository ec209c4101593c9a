"""Playlist text (RFC 8216, Apple's authoring rules), declared bandwidth, and the gzip/credential
helpers of the routes. All pure."""

from __future__ import annotations

import re
from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.hls import fmp4
from revenge.hls.plan import plan_segments
from revenge.hls.playlist import (
    BANDWIDTH_HEADROOM,
    DateRange,
    Variant,
    declared_bandwidth,
    measured_segments,
    media_playlist,
    multivariant_playlist,
)
from revenge.web.routes_hls import accepts_gzip


def test_media_playlist_is_vod_v7_with_map_exact_extinf_and_endlist() -> None:
    plan = plan_segments(13 * 44100 + 5, 44100, 1024, 0, 6.0)
    text = media_playlist(plan, "api_key=k%2B1")
    lines = text.splitlines()
    assert lines[:7] == [
        "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:6", "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4?api_key=k%2B1"',
    ]
    assert lines[7:] == [
        "#EXTINF:5.990748,", "segment0.m4s?api_key=k%2B1",
        "#EXTINF:5.990748,", "segment1.m4s?api_key=k%2B1",
        "#EXTINF:1.018617,", "segment2.m4s?api_key=k%2B1",
        "#EXT-X-ENDLIST",
    ]
    assert text.endswith("\n")


def test_media_playlist_without_query_has_bare_uris() -> None:
    text = media_playlist(plan_segments(48000, 48000, 960, 312, 6.0))
    assert '#EXT-X-MAP:URI="init.mp4"' in text and "\nsegment0.m4s\n" in text and "?" not in text
    extinf = [Fraction(m) for m in re.findall(r"#EXTINF:([0-9.]+),", text)]
    assert sum(extinf) == 1  # one second exactly (six decimals are exact here)


def test_multivariant_lists_every_variant_with_bandwidth_and_codecs() -> None:
    text = multivariant_playlist([Variant("aac-64", 70000, 66000, "mp4a.40.2"),
                                  Variant("flac", 900000, 800000, "fLaC")], "t=abc")
    assert text.splitlines() == [
        "#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=66000,CODECS="mp4a.40.2"',
        "aac-64/index.m3u8?t=abc",
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,CODECS="fLaC"', "flac/index.m3u8?t=abc",
    ]
    with pytest.raises(ValueError):
        multivariant_playlist([])


# A toy grid in round numbers: 1000 samples/s, 100-sample frames, 10 frames (1 s) per segment.
# media_segment_overhead(n) = 104 + 4n: 144 bytes for 10 frames, 124 for 5, 116 for 3.


def test_declared_bandwidth_predicts_every_segment_from_segment_0_alone() -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)  # 1 s, 1 s, 0.5 s (5 frames)
    # Segment 0: 144 bytes of container + 1000 of payload → 1000 payload bytes/s.
    # Predicted: 1144, 1144 and 500 + 124 = 624 bytes → 9152, 9152 and 9984 bit/s.
    peak, average = declared_bandwidth(plan, {0: 1144})
    assert peak == 10_783  # the short last segment wins: ceil(9984 × 1.08 = 10 782.7)
    assert average == 9_319  # ceil(8 × 2912 bytes / 2.5 s = 9318.4)
    # The same stream measured on a body segment too predicts the same.
    assert declared_bandwidth(plan, {0: 1144, 2: 624}) == (peak, average)


def test_a_quiet_segment_0_stands_for_itself_only() -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)
    # Segment 0 is silence (10 payload bytes); the body flows at 1000 bytes/s (segment 1: 1144).
    peak, average = declared_bandwidth(plan, {0: 154, 1: 1144})
    assert peak == 10_783  # the body's short last segment, as for a loud segment 0
    assert average == ceil(8 * (154 + 1144 + 624) / Fraction(25, 10))  # 6151
    # From segment 0 alone the whole item would have looked silent.
    assert declared_bandwidth(plan, {0: 154})[1] < average / 4  # 1399


def test_a_primed_segment_0_predicts_the_others_per_frame() -> None:
    plan = plan_segments(2450, 1000, 100, 50, 1.0)  # segment 0 presents 0.95 s of its 10 frames
    assert [plan.duration(s) for s in plan.segments()] == [Fraction(95, 100), 1, Fraction(1, 2)]
    # 950 payload bytes in 10 frames: 95 per frame, the priming frame included (it costs bytes and
    # presents nothing). Predicted: 1094, 95 × 10 + 144 = 1094, 95 × 5 + 124 = 599 bytes.
    peak, average = declared_bandwidth(plan, {0: 144 + 950})
    assert peak == 10_351  # ceil(8 × 599 / 0.5 × 1.08 = 10 350.7)
    assert average == 9_101  # ceil(8 × 2787 / 2.45 = 9100.4)


def test_declared_bandwidth_of_a_one_segment_item() -> None:
    plan = plan_segments(300, 1000, 100, 0, 1.0)  # three frames, 0.3 s
    assert plan.count == 1 and measured_segments(plan, 3) == (0,)
    peak, average = declared_bandwidth(plan, {0: 116 + 60})  # 176 bytes in 0.3 s: 4693.3 bit/s
    assert (peak, average) == (5_069, 4_694)  # ceil(4693.3 × 1.08 = 5068.8)


def test_a_short_last_flac_frame_is_counted_in_the_last_segment_container() -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)
    # The last segment's trun also carries its 5 samples' durations: 644 bytes, not 624, for the
    # same 500 payload bytes (so measured on it, the payload rate is still 1000 bytes/s).
    expected = (ceil(8 * 644 * 2 * BANDWIDTH_HEADROOM), ceil(Fraction(8 * (1144 + 1144 + 644), 1) * 2 / 5))
    assert declared_bandwidth(plan, {0: 1144, 2: 644}, last_durations=True) == expected
    assert declared_bandwidth(plan, {0: 1144}, last_durations=True) == expected


def test_a_short_last_segment_counts_as_measured() -> None:
    plan = plan_segments(2100, 1000, 100, 0, 1.0)  # 1 s, 1 s and one frame (0.1 s)
    assert measured_segments(plan, 3) == (0, 1, 2)
    # The frame that ends the audio cost 80 payload bytes where the body's cost 50.
    peak, average = declared_bandwidth(plan, {0: 644, 1: 644, 2: 108 + 80})
    assert peak == ceil(8 * 188 * 10 * BANDWIDTH_HEADROOM)  # 15 040 bit/s, × 1.08
    assert average == ceil(Fraction(8 * (644 + 644 + 188)) / Fraction(21, 10))
    # From the body alone it would have been predicted at 50 bytes: below the real peak.
    assert declared_bandwidth(plan, {0: 644, 1: 644})[0] < 8 * 188 * 10


@pytest.mark.parametrize(("total", "run_segments", "expected"), [
    (1000, 3, (0,)), (2000, 3, (0, 1)), (4000, 3, (0, 1)), (6000, 3, (0, 3)), (7000, 3, (0, 3)),
    (30_000, 3, (0, 15)), (31_000, 3, (0, 15)), (600_000, 3, (0, 300)), (5000, 1, (0, 2)),
    (13_000, 4, (0, 4)),
    # A last segment under a quarter of a full one is measured too: 2 frames of 10.
    (2200, 3, (0, 1, 2)), (30_200, 3, (0, 15, 30)), (30_300, 3, (0, 15)), (1200, 3, (0, 1)),
])
def test_the_body_segment_is_the_first_of_the_middle_run(total: int, run_segments: int,
                                                          expected: tuple[int, ...]) -> None:
    plan = plan_segments(total, 1000, 100, 0, 1.0)
    assert measured_segments(plan, run_segments) == expected


@given(total=st.integers(1, 200_000), priming=st.sampled_from([0, 312, 1024]),
       first_per_frame=st.integers(0, 2_000), body_per_frame=st.integers(0, 2_000),
       last_per_frame=st.integers(0, 2_000))
def test_declared_bandwidth_equals_a_segment_by_segment_prediction(
        total: int, priming: int, first_per_frame: int, body_per_frame: int, last_per_frame: int) -> None:
    plan = plan_segments(total, 48000, 1024, priming, 6.0)
    indexes = measured_segments(plan, 3)
    last = plan.count - 1

    def size(index: int, per_frame: int) -> int:
        frames = plan.frames_in(plan.segment(index))
        return fmp4.media_segment_overhead(frames) + per_frame * frames

    sizes = {i: size(i, first_per_frame if i == 0 else last_per_frame if i == last else body_per_frame)
             for i in indexes}
    body = next((i for i in indexes if i not in (0, last)), last if last in sizes else 0)
    per_frame = {0: first_per_frame, last: last_per_frame}.get(body, body_per_frame)
    predicted = [(Fraction(sizes[s.index]) if s.index in sizes and s.index in (0, last)
                  else Fraction(size(s.index, per_frame)), plan.duration(s)) for s in plan.segments()]
    peak = max(8 * bytes_ / seconds for bytes_, seconds in predicted)
    average = 8 * sum(b for b, _ in predicted) / plan.total_duration
    assert declared_bandwidth(plan, sizes) == (ceil(peak * BANDWIDTH_HEADROOM), ceil(average))


@pytest.mark.parametrize("sizes", [{}, {1: 1144}, {0: 1144, 3: 624}, {0: 143}, {0: -5}, {0: 1144, 1: 143}])
def test_declared_bandwidth_refuses_what_cannot_be_measured_segments(sizes: dict[int, int]) -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)
    with pytest.raises(ValueError):
        declared_bandwidth(plan, sizes)
    with pytest.raises(ValueError):  # two body segments
        declared_bandwidth(plan_segments(4000, 1000, 100, 0, 1.0), {0: 1144, 1: 1144, 2: 1144})


@pytest.mark.parametrize(("header", "ok"), [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
    ("gzip;q=0", False), ("identity", False), ("", False), (None, False), ("deflate", False),
])
def test_accepts_gzip(header: str | None, ok: bool) -> None:
    assert accepts_gzip(header) is ok


def test_date_ranges_follow_the_map_on_a_timeline_at_the_epoch() -> None:
    plan = plan_segments(44100 * 10, 44100, 1024, 0, 4.0)
    plain = media_playlist(plan, "t=x")
    assert "DATERANGE" not in plain and "PROGRAM-DATE-TIME" not in plain
    ranges = [DateRange("track-1", "com.revenge.track", 0, 4300, (("X-ITEM-ID", "a" * 16),)),
              DateRange("track-2", "com.revenge.track", 4300, 61_250, (("X-TITLE", 'Say "hi"\n'),))]
    text = media_playlist(plan, "t=x", ranges)
    lines = text.splitlines()
    at = lines.index('#EXT-X-MAP:URI="init.mp4?t=x"')
    assert lines[at + 1 : at + 4] == [
        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z",
        '#EXT-X-DATERANGE:ID="track-1",CLASS="com.revenge.track",START-DATE="1970-01-01T00:00:00.000Z",'
        'DURATION=4.300,X-ITEM-ID="aaaaaaaaaaaaaaaa"',
        '#EXT-X-DATERANGE:ID="track-2",CLASS="com.revenge.track",START-DATE="1970-01-01T00:00:04.300Z",'
        "DURATION=56.950,X-TITLE=\"Say 'hi' \"",
    ]
    # Everything else is the plain playlist's, line for line.
    assert [line for line in lines if "DATE" not in line] == plain.splitlines()
