"""What the catalog knows about items and their files. Plain frozen dataclasses, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ItemType = Literal["track", "episode", "audiobook"]
ITEM_TYPES: tuple[ItemType, ...] = ("track", "episode", "audiobook")

# Item ids: 16 characters of lowercase RFC 4648 base32 (80 bits of a hash of the item's path
# relative to its library root). Validated before any lookup so junk never reaches SQL or a path.
ITEM_ID_RE = re.compile(r"[a-z2-7]{16}")

LOSSLESS_CODECS = frozenset({"flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd"})


def is_valid_item_id(value: str) -> bool:
    return bool(ITEM_ID_RE.fullmatch(value))


def is_pcm_codec(codec: str) -> bool:
    """Uncompressed audio: FFmpeg names its PCM decoders pcm_<format> (pcm_s16le, pcm_f32be, …)."""
    return codec.startswith("pcm_")


def is_lossless_codec(codec: str) -> bool:
    return codec in LOSSLESS_CODECS or is_pcm_codec(codec)


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One audio file on disk as the probe saw it.

    ``sample_count`` is exact: the number of samples per channel FFmpeg's decoder yields for the file
    after gapless trimming (MP3 LAME delay/padding, MP4 edit lists, Opus pre-skip). The HLS planner
    builds its segment grid on it, and the transcoder trims or pads its decode to match it.
    """

    path: str  # absolute, resolved; produced by the scanner, never from user input
    size: int
    mtime_ns: int
    container: str  # e.g. "flac", "mp3", "mov,mp4,m4a,3gp,3g2,mj2", "ogg", "wav"
    codec: str  # decoder name, e.g. "flac", "mp3", "aac", "opus", "pcm_s16le"
    sample_rate: int
    channels: int
    bit_rate: int  # bits per second, measured over the file (size * 8 / duration) when not stated
    sample_count: int

    @property
    def duration_seconds(self) -> float:
        return self.sample_count / self.sample_rate


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter on the item's timeline (for multi-file books: the concatenated timeline)."""

    index: int
    title: str
    start_ms: int
    end_ms: int


def duration_ms_of(samples: int, rate: int) -> int:
    return samples * 1000 // rate if rate > 0 else 0


def bit_rate_of(size: int, samples: int, rate: int) -> int:
    """Bits per second of ``size`` bytes holding ``samples`` at ``rate``."""
    seconds = samples / rate if rate > 0 else 0
    return int(size * 8 / seconds) if seconds > 0 else 0


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    type: ItemType
    title: str
    artist: str | None
    album: str | None
    album_artist: str | None
    track_number: int | None
    disc_number: int | None
    genre: str | None
    files: tuple[MediaFile, ...]  # one for tracks/episodes/.m4b; several for a folder book, in order
    chapters: tuple[Chapter, ...]
    fingerprint: str  # changes when any file's path, size or mtime changes; keys the segment cache
    # Samples on the item's timeline, at the first file's rate (files of a book are rescaled to it when
    # their rates differ), and the duration they make: worked out once, in __post_init__, since a
    # progress write asks for the duration several times.
    sample_count: int = field(init=False, repr=False, compare=False)
    duration_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rate = self.files[0].sample_rate
        samples = sum(f.sample_count if f.sample_rate == rate else f.sample_count * rate // f.sample_rate
                      for f in self.files)
        object.__setattr__(self, "sample_count", samples)
        object.__setattr__(self, "duration_ms", duration_ms_of(samples, rate))

    @property
    def first(self) -> MediaFile:
        return self.files[0]

    @property
    def sample_rate(self) -> int:
        return self.files[0].sample_rate

    @property
    def channels(self) -> int:
        return self.files[0].channels

    @property
    def codec(self) -> str:
        return self.files[0].codec

    @property
    def container(self) -> str:
        return self.files[0].container

    @property
    def lossless(self) -> bool:
        return all(is_lossless_codec(f.codec) for f in self.files)

    @property
    def bit_rate(self) -> int:
        return bit_rate_of(sum(f.size for f in self.files), self.sample_count, self.sample_rate)
