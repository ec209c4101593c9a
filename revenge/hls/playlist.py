"""m3u8 text (RFC 8216bis, Apple's HLS authoring rules): pure functions of the plan and the
variants. ``query`` is the one credential string every URI carries (players send no headers on
segment requests); swapping the API key for a signed token changes only what callers pass here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from revenge.hls.plan import SegmentPlan, extinf_text, target_duration

MEDIA_TYPE = "application/vnd.apple.mpegurl"


def _suffix(query: str) -> str:
    return f"?{query}" if query else ""


def segment_uri(index: int) -> str:
    return f"segment{index}.m4s"


INIT_URI = "init.mp4"


def media_playlist(plan: SegmentPlan, query: str = "") -> str:
    """VOD media playlist: every segment with its exact duration, the init segment as EXT-X-MAP."""
    suffix = _suffix(query)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target_duration(plan)}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{INIT_URI}{suffix}"',
    ]
    for segment in plan.segments():
        lines.append(f"#EXTINF:{extinf_text(plan.duration(segment))},")
        lines.append(f"{segment_uri(segment.index)}{suffix}")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Variant:
    profile: str  # the variant's directory: "<profile>/index.m3u8"
    bandwidth: int  # peak segment bit rate, bits/s, container included
    average_bandwidth: int
    codecs: str


def multivariant_playlist(variants: Sequence[Variant], query: str = "") -> str:
    if not variants:
        raise ValueError("a multivariant playlist needs at least one variant")
    suffix = _suffix(query)
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},'
                     f'CODECS="{v.codecs}"')
        lines.append(f"{v.profile}/index.m3u8{suffix}")
    return "\n".join(lines) + "\n"


# Declared peak = measured peak + 5 %: segments we did not measure may run a little hotter, and the
# declared value must stay within 10 % of the true peak (and should not be below it).
BANDWIDTH_HEADROOM = Fraction(105, 100)


def declared_bandwidth(spans: Sequence[tuple[int, Fraction]]) -> tuple[int, int]:
    """(BANDWIDTH, AVERAGE-BANDWIDTH) in bits/s from measured segments, each given as
    (bytes incl. moof and mdat headers, presentation seconds)."""
    timed = [(size, seconds) for size, seconds in spans if seconds > 0]
    if not timed:
        raise ValueError("no measured segment")
    peak = max(Fraction(8 * size) / seconds for size, seconds in timed)
    average = Fraction(8 * sum(s for s, _ in timed)) / sum(d for _, d in timed)
    return ceil(peak * BANDWIDTH_HEADROOM), ceil(average)
