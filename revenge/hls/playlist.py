"""m3u8 text (RFC 8216bis, Apple's HLS authoring rules): pure functions of the plan and the
variants. ``query`` is the one credential string every URI carries (players send no headers on
segment requests); swapping the API key for a signed token changes only what callers pass here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from revenge.hls.plan import SegmentPlan, extinf_text, target_duration

MEDIA_TYPE = "application/vnd.apple.mpegurl"


def _suffix(query: str) -> str:
    return f"?{query}" if query else ""


def segment_uri(index: int) -> str:
    return f"segment{index}.m4s"


INIT_URI = "init.mp4"


# EXT-X-DATERANGE needs a date on the timeline: a fixed one (the epoch) keeps the playlist a pure
# function of the plan; players use it only to place the ranges.
TIMELINE_START = "1970-01-01T00:00:00.000Z"


@dataclass(frozen=True, slots=True)
class DateRange:
    """A span of the timeline as an EXT-X-DATERANGE (RFC 8216bis §4.4.5.1): a track of an album."""

    id: str
    cls: str  # CLASS, reverse-DNS: ranges of one class share their semantics
    start_ms: int
    end_ms: int
    attributes: tuple[tuple[str, str], ...] = ()  # client attributes (X-…), quoted strings

    def tag(self) -> str:
        start = datetime.fromtimestamp(self.start_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
        parts = [f'ID="{_quoted(self.id)}"', f'CLASS="{_quoted(self.cls)}"',
                 f'START-DATE="{start.replace("+00:00", "Z")}"',
                 f"DURATION={(self.end_ms - self.start_ms) / 1000:.3f}"]
        parts += [f'{name}="{_quoted(value)}"' for name, value in self.attributes]
        return "#EXT-X-DATERANGE:" + ",".join(parts)


def _quoted(value: str) -> str:
    """A quoted-string's value: no double quote, CR or LF (RFC 8216bis §4.2)."""
    return value.replace('"', "'").replace("\r", " ").replace("\n", " ")


def media_playlist(plan: SegmentPlan, query: str = "", ranges: Sequence[DateRange] = ()) -> str:
    """VOD media playlist: every segment with its exact duration, the init segment as EXT-X-MAP;
    ``ranges`` (an album's tracks) as EXT-X-DATERANGE tags on a timeline starting at the epoch."""
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
    if ranges:  # a playlist with EXT-X-DATERANGE must have an EXT-X-PROGRAM-DATE-TIME
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{TIMELINE_START}")
        lines += [r.tag() for r in ranges]
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
