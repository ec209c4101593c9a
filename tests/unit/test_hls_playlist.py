"""Playlist text (RFC 8216, Apple's authoring rules) and the gzip/credential helpers of the routes.
All pure."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from revenge.hls.plan import plan_segments
from revenge.hls.playlist import DateRange, Variant, media_playlist, multivariant_playlist
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
