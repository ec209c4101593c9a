"""Direct play or HLS, and which HLS variants, from what the client says it can play (pure).

Direct play needs the client to accept the source's codec, its container and its bit rate, and the
item to be one file. Otherwise HLS: AAC for everyone, Opus first for clients that declare it (never for
Apple players, whose HLS stack does not take Opus in fMP4), a FLAC rung for lossless sources when the
client declares FLAC; every rung within the client's max bit rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from revenge.hls.profiles import PROFILES, output_format
from revenge.library.model import Item, is_pcm_codec

# Client vocabulary → our canonical names. Clients say "m4a", "mp4", "audio/mp4", "fmp4"…
_CODEC_ALIASES = {
    "aac": "aac", "mp4a": "aac", "mp4a.40.2": "aac", "aac-lc": "aac",
    "mp3": "mp3", "mpeg": "mp3",
    "flac": "flac", "flac-lossless": "flac",
    "opus": "opus",
    "vorbis": "vorbis",
    "alac": "alac",
    "pcm": "pcm", "wav": "pcm", "lpcm": "pcm",
}
_CONTAINER_ALIASES = {
    "mp4": "mp4", "m4a": "mp4", "m4b": "mp4", "mov": "mp4", "fmp4": "mp4", "audio/mp4": "mp4",
    "mp3": "mp3", "audio/mpeg": "mp3",
    "flac": "flac", "audio/flac": "flac",
    "ogg": "ogg", "oga": "ogg", "opus": "ogg", "audio/ogg": "ogg",
    "webm": "webm", "audio/webm": "webm",
    "wav": "wav", "wave": "wav", "audio/wav": "wav",
}
# FFmpeg's demuxer names (as the probe records them) → canonical container.
_FFMPEG_CONTAINERS = {"mov": "mp4", "mp4": "mp4", "mp3": "mp3", "flac": "flac", "ogg": "ogg", "wav": "wav",
                      "matroska": "webm", "webm": "webm"}

Reason = Literal[
    "multi_file_item",
    "codec_not_supported",
    "container_not_supported",
    "bitrate_too_high",
    "hls_preferred",
]
Preference = Literal["direct", "hls"]
PREFERENCES: tuple[Preference, ...] = ("direct", "hls")


def normalize_codec(name: str) -> str:
    lowered = name.strip().lower()
    if is_pcm_codec(lowered):
        return "pcm"
    if lowered in ("mp3float", "mp3"):
        return "mp3"
    return _CODEC_ALIASES.get(lowered, lowered)


def normalize_container(name: str) -> str:
    lowered = name.strip().lower()
    if "," in lowered:  # an FFmpeg demuxer name such as "mov,mp4,m4a,3gp,3g2,mj2"
        return _FFMPEG_CONTAINERS.get(lowered.split(",")[0], lowered.split(",")[0])
    return _CONTAINER_ALIASES.get(lowered, _FFMPEG_CONTAINERS.get(lowered, lowered))


def is_apple_user_agent(user_agent: str) -> bool:
    """AVPlayer, Safari and the Apple TV stack; Chrome on iOS is WebKit too and uses AVFoundation."""
    ua = user_agent.lower()
    if any(token in ua for token in ("appletv", "applecoremedia", "avplayer", "iphone", "ipad", "ipod")):
        return True
    return "safari" in ua and "macintosh" in ua and "chrome" not in ua and "chromium" not in ua


@dataclass(frozen=True, slots=True)
class ClientCapabilities:
    codecs: frozenset[str]
    containers: frozenset[str]
    max_bitrate: int | None  # bits per second; None: no limit
    hls: bool
    apple: bool = False
    # "hls": the client wants HLS even when it could play the file (an HLS-only player, a client that
    # wants the bitrate ladder); it still gets the file when no HLS variant suits it.
    prefer: Preference = "direct"

    @classmethod
    def from_lists(cls, codecs: Iterable[str], containers: Iterable[str], max_bitrate: int | None,
                   hls: bool, apple: bool = False, prefer: Preference = "direct") -> ClientCapabilities:
        return cls(frozenset(normalize_codec(c) for c in codecs),
                   frozenset(normalize_container(c) for c in containers), max_bitrate, hls, apple, prefer)


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Literal["direct", "hls"]
    reasons: tuple[str, ...]  # why not direct (empty for direct play)
    profiles: tuple[str, ...]  # HLS variants to offer, preferred first (empty for direct play)


class NoCompatibleStream(ValueError):
    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("the client declares nothing this item can be played as: " + ", ".join(reasons))
        self.reasons = tuple(reasons)


def direct_play_failures(item: Item, caps: ClientCapabilities) -> list[str]:
    reasons: list[str] = []
    if len(item.files) > 1:
        reasons.append("multi_file_item")
    if normalize_codec(item.codec) not in caps.codecs:
        reasons.append("codec_not_supported")
    if normalize_container(item.container) not in caps.containers:
        reasons.append("container_not_supported")
    if caps.max_bitrate is not None and item.bit_rate > caps.max_bitrate:
        reasons.append("bitrate_too_high")
    return reasons


def _rung_bit_rate(name: str, item: Item) -> int:
    profile = PROFILES[name]
    if profile.lossless:
        return item.bit_rate  # FLAC of a lossless source costs about what the source does
    return output_format(profile, item.sample_rate, item.channels).bit_rate


def choose_hls_profiles(item: Item, caps: ClientCapabilities, ladder: Sequence[str]) -> list[str]:
    """The variants to offer, preferred first; empty when the client can take none of them."""
    within = (lambda rate: True) if caps.max_bitrate is None else (lambda rate: rate <= caps.max_bitrate)
    chosen: list[str] = []
    if "flac" in caps.codecs and item.lossless and within(_rung_bit_rate("flac", item)):
        chosen.append("flac")
    if "opus" in caps.codecs and not caps.apple and within(_rung_bit_rate("opus-128", item)):
        chosen.append("opus-128")
    if "aac" in caps.codecs:
        aac = [name for name in ladder if PROFILES[name].is_aac]
        fitting = [name for name in aac if within(_rung_bit_rate(name, item))]
        if not fitting and aac and not chosen:
            # Even the smallest rung is over the limit: offer it rather than nothing.
            fitting = [min(aac, key=lambda name: PROFILES[name].bit_rate)]
        chosen.extend(sorted(fitting, key=lambda name: -PROFILES[name].bit_rate))
    return chosen


def decide(item: Item, caps: ClientCapabilities, ladder: Sequence[str]) -> Decision:
    """Direct play when everything fits (unless the client prefers HLS and can have it); else HLS;
    :class:`NoCompatibleStream` when neither works."""
    failures = direct_play_failures(item, caps)
    if not failures and caps.prefer == "direct":
        return Decision("direct", (), ())
    profiles = choose_hls_profiles(item, caps, ladder) if caps.hls else []
    if profiles:
        return Decision("hls", tuple(failures) or ("hls_preferred",), tuple(profiles))
    if not failures:  # HLS was preferred but none of its variants suits the client: the file does
        return Decision("direct", (), ())
    raise NoCompatibleStream([*failures, "no_hls_codec_in_common" if caps.hls else "hls_not_supported"])
