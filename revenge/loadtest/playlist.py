"""What a player reads from HLS playlists (pure): the variants of a multivariant playlist and the
init segment and timed segments of a media playlist, every URI resolved against the playlist's URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

_ATTR_RE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


class PlaylistError(ValueError):
    """The text is not a playlist of the expected kind."""


@dataclass(frozen=True, slots=True)
class VariantRef:
    uri: str  # absolute
    bandwidth: int
    average_bandwidth: int | None
    codecs: str

    @property
    def profile(self) -> str:
        """The variant's directory name, which is the server's profile name (``aac-128/index.m3u8``)."""
        parts = urlsplit(self.uri).path.rstrip("/").split("/")
        return parts[-2] if len(parts) >= 2 else ""


@dataclass(frozen=True, slots=True)
class SegmentRef:
    index: int  # position in the playlist, from 0 (EXT-X-MEDIA-SEQUENCE is not added)
    uri: str  # absolute
    start: float  # seconds from the start of the item
    duration: float  # seconds (EXTINF)

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    init_uri: str | None  # EXT-X-MAP, absolute
    segments: tuple[SegmentRef, ...]
    target_duration: int
    ended: bool  # EXT-X-ENDLIST (VOD)

    @property
    def duration(self) -> float:
        return self.segments[-1].end if self.segments else 0.0

    def index_at(self, seconds: float) -> int:
        """The segment that plays at ``seconds`` (the last one at or past the end)."""
        lo, hi = 0, len(self.segments) - 1
        if hi < 0:
            raise PlaylistError("the playlist has no segments")
        while lo < hi:  # first segment whose end is after ``seconds``
            mid = (lo + hi) // 2
            if self.segments[mid].end > seconds:
                hi = mid
            else:
                lo = mid + 1
        return lo


def attributes(text: str) -> dict[str, str]:
    """``KEY=value,KEY="quoted, value"`` → dict, quotes removed."""
    return {key: value[1:-1] if value.startswith('"') else value for key, value in _ATTR_RE.findall(text)}


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an m3u8 playlist: the first line is not #EXTM3U")
    return [line for line in lines[1:] if line]


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PlaylistError(f"{what} is not an integer: {value!r}") from None


def parse_multivariant(text: str, url: str) -> list[VariantRef]:
    variants: list[VariantRef] = []
    pending: dict[str, str] | None = None
    for line in _lines(text):
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = attributes(line.partition(":")[2])
        elif line.startswith("#"):
            continue
        elif pending is not None:
            if "BANDWIDTH" not in pending:
                raise PlaylistError("EXT-X-STREAM-INF without BANDWIDTH")
            average = pending.get("AVERAGE-BANDWIDTH")
            variants.append(VariantRef(
                uri=urljoin(url, line),
                bandwidth=_int(pending["BANDWIDTH"], "BANDWIDTH"),
                average_bandwidth=_int(average, "AVERAGE-BANDWIDTH") if average is not None else None,
                codecs=pending.get("CODECS", ""),
            ))
            pending = None
    if not variants:
        raise PlaylistError("no EXT-X-STREAM-INF variant in the multivariant playlist")
    return variants


def choose_variant(variants: list[VariantRef], profile: str | None) -> VariantRef:
    """The variant named ``profile`` when there is one, else the first (the server lists its
    preferred variant first)."""
    if profile:
        for variant in variants:
            if variant.profile == profile:
                return variant
    return variants[0]


def parse_media(text: str, url: str) -> MediaPlaylist:
    init_uri: str | None = None
    target: int | None = None
    ended = False
    segments: list[SegmentRef] = []
    duration: float | None = None
    at = 0.0
    for line in _lines(text):
        if line.startswith("#EXT-X-STREAM-INF:"):
            raise PlaylistError("a multivariant playlist where a media playlist was expected")
        if line.startswith("#EXTINF:"):
            raw = line.partition(":")[2].split(",", 1)[0]
            try:
                duration = float(raw)
            except ValueError:
                raise PlaylistError(f"EXTINF is not a number: {raw!r}") from None
            if not duration >= 0:
                raise PlaylistError(f"EXTINF is negative: {raw!r}")
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = _int(line.partition(":")[2], "EXT-X-TARGETDURATION")
        elif line.startswith("#EXT-X-MAP:"):
            uri = attributes(line.partition(":")[2]).get("URI")
            if not uri:
                raise PlaylistError("EXT-X-MAP without URI")
            init_uri = urljoin(url, uri)
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line.startswith("#"):
            continue
        else:
            if duration is None:
                raise PlaylistError(f"segment URI without EXTINF: {line!r}")
            segments.append(SegmentRef(len(segments), urljoin(url, line), at, duration))
            at += duration
            duration = None
    if target is None:
        raise PlaylistError("no EXT-X-TARGETDURATION in the media playlist")
    if not segments:
        raise PlaylistError("the media playlist has no segments")
    return MediaPlaylist(init_uri, tuple(segments), target, ended)
