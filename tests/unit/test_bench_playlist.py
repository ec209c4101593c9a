"""The load simulator's playlist reading: variants, segment timing, URI resolution, bad input."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.hls.plan import SegmentPlan
from revenge.hls.playlist import Variant, media_playlist, multivariant_playlist
from revenge.loadtest.playlist import (
    PlaylistError,
    attributes,
    choose_variant,
    parse_media,
    parse_multivariant,
)

BASE = "http://host:7700/api/v1/stream/abcdefghijklmnop/playlist.m3u8?t=TOKEN&profiles=aac-256,aac-128"


def test_attributes_keep_quoted_commas() -> None:
    assert attributes('BANDWIDTH=140000,CODECS="mp4a.40.2,fLaC",AVERAGE-BANDWIDTH=130000') == {
        "BANDWIDTH": "140000", "CODECS": "mp4a.40.2,fLaC", "AVERAGE-BANDWIDTH": "130000"}


def test_multivariant_from_the_servers_own_writer() -> None:
    text = multivariant_playlist([Variant("aac-256", 280_000, 262_000, "mp4a.40.2"),
                                  Variant("aac-128", 140_000, 131_000, "mp4a.40.2")], "t=TOKEN")
    variants = parse_multivariant(text, BASE)
    assert [v.profile for v in variants] == ["aac-256", "aac-128"]
    assert variants[1].uri == "http://host:7700/api/v1/stream/abcdefghijklmnop/aac-128/index.m3u8?t=TOKEN"
    assert (variants[1].bandwidth, variants[1].average_bandwidth, variants[1].codecs) == (
        140_000, 131_000, "mp4a.40.2")
    assert choose_variant(variants, "aac-128").profile == "aac-128"
    assert choose_variant(variants, "opus-128").profile == "aac-256"  # not offered: the server's first
    assert choose_variant(variants, None).profile == "aac-256"


def test_media_playlist_from_the_servers_own_writer() -> None:
    plan = SegmentPlan(total=44_100 * 20 + 17, rate=44_100, frame_size=1024, priming=1024,
                       frames_per_segment=258)
    url = "http://host:7700/api/v1/stream/abcdefghijklmnop/aac-128/index.m3u8?t=TOKEN"
    media = parse_media(media_playlist(plan, "t=TOKEN"), url)
    assert media.ended
    assert media.init_uri == "http://host:7700/api/v1/stream/abcdefghijklmnop/aac-128/init.mp4?t=TOKEN"
    assert len(media.segments) == plan.count
    assert media.segments[3].uri.endswith("/aac-128/segment3.m4s?t=TOKEN")
    exact = sum(Fraction(s.samples, plan.rate) for s in plan.segments())
    assert media.duration == pytest.approx(float(exact), abs=1e-4)  # EXTINF carries ≥ 5 decimals
    for a, b in zip(media.segments, media.segments[1:], strict=False):
        assert b.start == pytest.approx(a.end)


@given(st.lists(st.floats(min_value=0.5, max_value=10.0), min_size=1, max_size=40),
       st.floats(min_value=0.0, max_value=1.0))
def test_index_at_finds_the_segment_playing(durations: list[float], fraction: float) -> None:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:10"]
    for i, d in enumerate(durations):
        lines += [f"#EXTINF:{d:.5f},", f"segment{i}.m4s"]
    media = parse_media("\n".join(lines), "http://h/x/index.m3u8")
    at = media.duration * fraction
    index = media.index_at(at)
    segment = media.segments[index]
    if at < media.duration:
        assert segment.start <= at < segment.end
    else:
        assert index == len(durations) - 1


@pytest.mark.parametrize("text, message", [
    ("", "EXTM3U"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n", "no segments"),
    ("#EXTM3U\n#EXTINF:6.0,\nsegment0.m4s\n", "TARGETDURATION"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\nsegment0.m4s\n", "without EXTINF"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:abc,\nsegment0.m4s\n", "not a number"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n#EXTINF:6,\ns.m4s\n", "without URI"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na/index.m3u8\n", "multivariant"),
])
def test_bad_media_playlists_are_refused(text: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        parse_media(text, "http://h/x/index.m3u8")


@pytest.mark.parametrize("text, message", [
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\ns.m4s\n", "no EXT-X-STREAM-INF"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"mp4a.40.2\"\na/index.m3u8\n", "without BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\na/index.m3u8\n", "not an integer"),
])
def test_bad_multivariant_playlists_are_refused(text: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        parse_multivariant(text, BASE)
