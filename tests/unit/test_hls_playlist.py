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


def test_declared_bandwidth_predicts_every_segment_from_segment_0() -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)  # 1 s, 1 s, 0.5 s (5 frames)
    # Segment 0: 144 bytes of container + 1000 of payload → 1000 payload bytes/s.
    # Predicted: 1144, 1144 and 500 + 124 = 624 bytes → 9152, 9152 and 9984 bit/s.
    peak, average = declared_bandwidth(plan, 0, 1144)
    assert peak == 10_484  # the short last segment wins: ceil(9984 × 1.05 = 10 483.2)
    assert average == 9_319  # ceil(8 × 2912 bytes / 2.5 s = 9318.4)
    # The same stream measured on its last segment predicts the same.
    assert declared_bandwidth(plan, 2, 624) == (peak, average)


def test_declared_bandwidth_of_a_primed_plan_uses_presented_seconds() -> None:
    plan = plan_segments(2450, 1000, 100, 50, 1.0)  # segment 0 presents 0.95 s of its 10 frames
    assert [plan.duration(s) for s in plan.segments()] == [Fraction(95, 100), 1, Fraction(1, 2)]
    # 950 payload bytes in 0.95 s: 1000 bytes/s. Predicted: 1094, 1144, 624 bytes over 2.45 s.
    peak, average = declared_bandwidth(plan, 0, 144 + 950)
    assert peak == 10_484
    assert average == 9_346  # ceil(8 × 2862 / 2.45 = 9345.3)


def test_declared_bandwidth_of_a_one_segment_item() -> None:
    plan = plan_segments(300, 1000, 100, 0, 1.0)  # three frames, 0.3 s
    assert plan.count == 1
    peak, average = declared_bandwidth(plan, 0, 116 + 60)  # 176 bytes in 0.3 s: 4693.3 bit/s
    assert (peak, average) == (4_928, 4_694)  # 4693.3 × 1.05 = 4928 exactly


@given(total=st.integers(1, 200_000), priming=st.sampled_from([0, 312, 1024]),
       frames=st.integers(1, 400), size_per_frame=st.integers(0, 2_000))
def test_declared_bandwidth_equals_a_segment_by_segment_prediction(
        total: int, priming: int, frames: int, size_per_frame: int) -> None:
    plan = plan_segments(total, 48000, 1024, priming, 6.0)
    first = plan.segment(0)
    size = fmp4.media_segment_overhead(plan.frames_in(first)) + size_per_frame * plan.frames_in(first)
    rate = Fraction(size - fmp4.media_segment_overhead(plan.frames_in(first))) / plan.duration(first)
    predicted = [(rate * plan.duration(s) + fmp4.media_segment_overhead(plan.frames_in(s)), plan.duration(s))
                 for s in plan.segments()]
    peak = max(8 * bytes_ / seconds for bytes_, seconds in predicted)
    average = 8 * sum(b for b, _ in predicted) / plan.total_duration
    assert declared_bandwidth(plan, 0, size) == (ceil(peak * BANDWIDTH_HEADROOM), ceil(average))


@pytest.mark.parametrize(("index", "size"), [(-1, 1144), (3, 624), (0, 143), (0, -5)])
def test_declared_bandwidth_refuses_what_cannot_be_a_measured_segment(index: int, size: int) -> None:
    plan = plan_segments(2500, 1000, 100, 0, 1.0)
    with pytest.raises(ValueError):
        declared_bandwidth(plan, index, size)


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
