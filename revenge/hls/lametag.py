"""The Xing/Info frame with a LAME tag that starts a gapless CBR MP3 stream. Pure: no I/O.

FFmpeg's mp3 muxer writes this frame only on a seekable output (it fills it in at the end); a stream
sent as it is encoded needs it first, so everything in it is worked out ahead from the exact sample
count: LAME's frame count and end padding (``lame_encode_flush``: the input plus the 576-sample
encoder delay is padded to whole frames with at least 576 samples), and the CBR byte count (LAME
pads a frame by one byte whenever the fractional bytes per frame it owes reach a whole byte).

Decoders trim by the tag: FFmpeg (``mp3dec.c``, hence mpv) skips ``delay + 529`` samples at the
start (529: the MP3 decoder's own delay) and drops the last ``padding - 529`` of ``frames * 1152``;
LAME-aware players (foobar2000, mpg123) do the same. The music CRC (of all the audio frames) cannot
be known ahead and is left 0: no decoder we know checks it; the tag's own CRC is right.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III
LAME_DELAY = 576  # libmp3lame's encoder delay (lame_get_encoder_delay)
DECODER_DELAY = 529  # what decoders add to the tag's delay (FFmpeg: start_pad + 528 + 1)
ENCODER = b"LAME3.100"  # the short version string: the encoder the audio frames come from

# MPEG-1 Layer III: bit-rate index → kb/s, sample rate index → Hz.
_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_RATES = (44100, 48000, 32000)
_XING_SIZE = 156  # "Info" to the end of the LAME tag
LAME_TAG_OFFSET = 120  # the LAME tag's offset from "Info": tag, flags, frames, bytes, 100 TOC bytes, quality


@dataclass(frozen=True, slots=True)
class Gapless:
    """What LAME makes of ``samples`` samples: audio frames, the end padding the tag announces, and
    the bytes of those frames at a constant bit rate."""

    samples: int
    frames: int
    padding: int
    audio_bytes: int


def frame_bytes(kbps: int, rate: int, padded: bool = False) -> int:
    """Bytes of one MPEG-1 Layer III frame."""
    return 144_000 * kbps // rate + padded


def lame_frames(samples: int) -> tuple[int, int]:
    """(audio frames, end padding) LAME encodes ``samples`` into, as ``lame_encode_flush`` pads."""
    if samples < 0:
        raise ValueError("negative sample count")
    if samples == 0:
        return 0, 0  # LAME flushes nothing it was never given
    total = samples + LAME_DELAY
    padding = SAMPLES_PER_FRAME - total % SAMPLES_PER_FRAME
    if padding < LAME_DELAY:
        padding += SAMPLES_PER_FRAME
    return (total + padding) // SAMPLES_PER_FRAME, padding


def cbr_bytes(frames: int, kbps: int, rate: int) -> int:
    """Bytes of ``frames`` CBR frames from LAME: the first is never padded, and one byte is added
    whenever the owed fraction (``144000 * kbps % rate`` per frame) passes a whole ``rate``."""
    fraction = 144_000 * kbps % rate
    padded = -(-(frames - 1) * fraction // rate) if frames > 0 else 0
    return frames * frame_bytes(kbps, rate) + padded


def gapless(samples: int, kbps: int, rate: int) -> Gapless:
    frames, padding = lame_frames(samples)
    return Gapless(samples, frames, padding, cbr_bytes(frames, kbps, rate))


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0): the LAME tag's CRC (FFmpeg's AV_CRC_16_ANSI_LE)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _side_info(channels: int) -> int:
    return 17 if channels == 1 else 32  # MPEG-1 side information bytes, all zero in this frame


def info_frame(samples: int, kbps: int, rate: int, channels: int) -> bytes:
    """The Info frame (CBR Xing header with a LAME tag) for a stream of ``samples`` samples per
    channel encoded by LAME at ``kbps`` and ``rate``; the stream's total is this frame's length plus
    ``gapless(...).audio_bytes``."""
    if rate not in _RATES or kbps not in _BITRATES[1:] or channels not in (1, 2):
        raise ValueError(f"no MPEG-1 Layer III frame for {kbps} kb/s, {rate} Hz, {channels} channels")
    info = gapless(samples, kbps, rate)
    at = 4 + _side_info(channels)
    # The frame is at the stream's bit rate when the tag fits (it does from 64 kb/s), else the
    # lowest rate it fits in, as FFmpeg does: decoders skip this frame whatever its rate.
    index = next(i for i in range(_BITRATES.index(kbps), len(_BITRATES))
                 if frame_bytes(_BITRATES[i], rate) >= at + _XING_SIZE)
    size = frame_bytes(_BITRATES[index], rate)
    frame = bytearray(size)
    mode = 3 if channels == 1 else 0  # single channel / stereo
    frame[0:4] = bytes((0xFF, 0xFB, index << 4 | _RATES.index(rate) << 2, mode << 6))
    toc = bytes(256 * i // 100 for i in range(100))  # CBR: bytes grow linearly with time
    body = b"".join((
        b"Info",
        (0x0F).to_bytes(4, "big"),  # frames, bytes, TOC and quality present
        info.frames.to_bytes(4, "big"),
        (size + info.audio_bytes).to_bytes(4, "big"),
        toc,
        (0).to_bytes(4, "big"),  # quality: unknown
        ENCODER,
        bytes((0x01,)),  # tag revision 0, CBR
        bytes(1),  # lowpass: unknown
        bytes(8),  # no ReplayGain
        bytes(1),  # encoding flags, ATH type
        bytes((min(kbps, 255),)),  # CBR: the bit rate
        (LAME_DELAY << 12 | info.padding).to_bytes(3, "big"),
        bytes(4),  # misc, MP3Gain, preset and surround
        (size + info.audio_bytes).to_bytes(4, "big"),  # music length: from this frame on
        bytes(2),  # music CRC: unknown ahead (see the module docstring)
    ))
    assert len(body) == _XING_SIZE - 2
    frame[at : at + len(body)] = body
    crc_at = at + len(body)
    frame[crc_at : crc_at + 2] = crc16(bytes(frame[:crc_at])).to_bytes(2, "big")
    return bytes(frame)

