"""MPEG audio Layer III read from its bytes: the ID3v2 tag's size, frame headers, the Xing/Info or VBRI
header of the first frame (with the LAME or FFmpeg gapless tag behind an Info/Xing one), and a walk
over the frames that follow. Pure: no I/O.

What FFmpeg's mp3 demuxer makes of such a file, and the probe needs (``probe.mp3_by_frames``): the
exact length is the header's frame count times the samples per frame less the tag's encoder delay and
padding; its packets are the frames after the header frame, byte for byte, up to an ID3v1 tag.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Bit-rate index → kb/s: MPEG-1 Layer III, and MPEG-2/2.5 Layer III.
_KBPS_1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_KBPS_2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
# Version id → sample-rate index → Hz (version 1 is reserved).
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_GAPLESS_ENCODERS = (b"LAME", b"Lavf", b"Lavc")  # the tags FFmpeg takes the delay and padding from
_XING_ALL = 0x0F  # frames, bytes, TOC and quality: the gapless tag then sits at a known offset
ID3V1_BYTES = 128


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    rate: int
    channels: int
    kbps: int
    size: int  # bytes of the whole frame
    samples: int  # per frame

    @property
    def side_info(self) -> int:
        """Bytes of side information after the 4-byte header (where a Xing header starts)."""
        if self.version == 3:
            return 17 if self.channels == 1 else 32
        return 9 if self.channels == 1 else 17


def frame_header(data: bytes, at: int) -> FrameHeader | None:
    """The Layer III frame header at ``at``, if a plausible one starts there."""
    if at < 0 or at + 4 > len(data):
        return None
    b1, b2, b3 = data[at + 1], data[at + 2], data[at + 3]
    if data[at] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer = (b1 >> 1) & 3  # 1: Layer III
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    rate = _RATES[version][rate_index]
    kbps = (_KBPS_1 if version == 3 else _KBPS_2)[bitrate_index]
    per_kbps = 144_000 if version == 3 else 72_000
    size = per_kbps * kbps // rate + ((b2 >> 1) & 1)
    return FrameHeader(version, rate, 1 if b3 >> 6 == 3 else 2, kbps, size, 1152 if version == 3 else 576)


def id3v2_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of a file (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


@dataclass(frozen=True, slots=True)
class Mp3Totals:
    """What a Xing/Info or VBRI header declares: frame count and stream bytes, when present; and the
    gapless tag's encoder delay and padding when an Info/Xing header has one FFmpeg reads."""

    frames: int | None
    stream_bytes: int | None
    delay: int | None = None
    padding: int | None = None
    constant: bool = False  # "Info": a constant bit rate


def _gapless(data: bytes, xing: int, flags: int) -> tuple[int, int] | tuple[None, None]:
    tag = xing + 120  # "Xing", flags, frames, bytes, 100 TOC bytes, quality
    if flags & _XING_ALL != _XING_ALL or len(data) < tag + 24 or data[tag:tag + 4] not in _GAPLESS_ENCODERS:
        return None, None
    packed = int.from_bytes(data[tag + 21:tag + 24], "big")
    return packed >> 12, packed & 0xFFF


def mp3_declared_totals(data: bytes) -> Mp3Totals | None:
    """The Xing/Info or VBRI header of the first MPEG frame (``data`` starts after any ID3v2 tag).
    Only with a frame count is FFmpeg's MP3 duration exact rather than estimated from the bit rate."""
    limit = min(len(data) - 4, 64 * 1024)
    for at in range(max(limit, 0)):
        header = frame_header(data, at)
        if header is None:
            continue
        xing = at + 4 + header.side_info
        if data[xing:xing + 4] in (b"Xing", b"Info") and len(data) >= xing + 8:
            flags = struct.unpack_from(">I", data, xing + 4)[0]
            fields = xing + 8
            frames = stream_bytes = None
            if flags & 1 and len(data) >= fields + 4:
                frames = struct.unpack_from(">I", data, fields)[0]
                fields += 4
            if flags & 2 and len(data) >= fields + 4:
                stream_bytes = struct.unpack_from(">I", data, fields)[0]
            delay, padding = _gapless(data, xing, flags)
            return Mp3Totals(frames, stream_bytes, delay, padding, data[xing:xing + 4] == b"Info")
        vbri = at + 4 + 32
        if data[vbri:vbri + 4] == b"VBRI" and len(data) >= vbri + 18:
            stream_bytes, frames = struct.unpack_from(">II", data, vbri + 10)
            return Mp3Totals(frames, stream_bytes)
        return None
    return None


def frame_spans(data: bytes, start: int, end: int, enough: int,
                like: FrameHeader) -> list[tuple[int, int]] | None:
    """(offset, size) of the frames from ``start``, back to back, until they hold ``enough`` bytes or
    end exactly at ``end``. None when the run breaks first: a byte that is no frame header, a frame of
    another version, rate or channel count than ``like``, or a last frame cut by ``end`` (FFmpeg would
    resync or cut where this cannot follow it)."""
    spans: list[tuple[int, int]] = []
    at = start
    held = 0
    while held < enough and at < end:
        header = frame_header(data, at)
        if header is None or at + header.size > end or (header.version, header.rate, header.channels) != (
                like.version, like.rate, like.channels):
            return None
        spans.append((at, header.size))
        held += header.size
        at += header.size
    return spans
