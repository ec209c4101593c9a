"""The Info frame with its LAME tag: byte layout, the tag's CRC, delay and padding, and the frame and
byte counts it announces checked against what libmp3lame really produces."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from revenge.hls.lametag import (
    DECODER_DELAY,
    LAME_DELAY,
    LAME_TAG_OFFSET,
    SAMPLES_PER_FRAME,
    cbr_bytes,
    crc16,
    frame_bytes,
    gapless,
    info_frame,
    lame_frames,
)


def lame_encode(samples: int, kbps: int, rate: int, channels: int) -> list[bytes]:
    """Packets libmp3lame makes of ``samples`` samples fed exactly (a short last frame)."""
    ctx = av.CodecContext.create("libmp3lame", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    layout = "mono" if channels == 1 else "stereo"
    ctx.sample_rate, ctx.layout, ctx.format = rate, layout, "s16p"
    ctx.bit_rate, ctx.time_base = kbps * 1000, Fraction(1, rate)
    ctx.open()
    noise = (np.random.default_rng(1).standard_normal((channels, samples)) * 3000).astype(np.int16)
    packets: list[bytes] = []
    for at in range(0, samples, SAMPLES_PER_FRAME):
        block = noise[:, at : at + SAMPLES_PER_FRAME]
        frame = av.AudioFrame.from_ndarray(block, format="s16p", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, at, Fraction(1, rate)
        packets.extend(bytes(p) for p in ctx.encode(frame))
    packets.extend(bytes(p) for p in ctx.encode(None))
    return packets


@pytest.mark.parametrize("samples", [1, 575, 576, 577, 1152, 1729, 44100, 66150])
@pytest.mark.parametrize("kbps, rate, channels", [(192, 44100, 2), (32, 48000, 1), (96, 32000, 2),
                                                  (320, 44100, 1)])
def test_frames_and_bytes_are_what_lame_makes(samples: int, kbps: int, rate: int, channels: int) -> None:
    packets = lame_encode(samples, kbps, rate, channels)
    info = gapless(samples, kbps, rate)
    assert (len(packets), sum(map(len, packets))) == (info.frames, info.audio_bytes)
    # What a decoder keeps after trimming the tag's delay and padding is the input, exactly.
    assert info.frames * SAMPLES_PER_FRAME - LAME_DELAY - info.padding == samples


def test_padding_follows_lame_flush() -> None:
    assert lame_frames(0) == (0, 0)
    assert lame_frames(1) == (2, 1727)  # 1 + 576 leaves 575 in the first frame: under 576, one more
    assert lame_frames(576) == (2, 1152)  # 1152 fills a frame exactly: a whole frame of padding
    assert lame_frames(577) == (2, 1151)
    assert lame_frames(44100) == (40, 1404)
    assert all(576 <= lame_frames(n)[1] < 576 + SAMPLES_PER_FRAME for n in range(1, 5000))
    with pytest.raises(ValueError):
        lame_frames(-1)


def test_cbr_bytes_pad_one_byte_per_owed_fraction() -> None:
    assert frame_bytes(128, 44100) == 417 and frame_bytes(128, 44100, True) == 418
    assert cbr_bytes(1, 128, 44100) == 417  # the first frame is never padded
    assert cbr_bytes(2, 128, 44100) == 835
    assert cbr_bytes(10, 128, 48000) == 3840  # 48 kHz at 128 kb/s: 384 bytes, nothing owed


def test_crc_is_crc16_arc() -> None:
    assert crc16(b"123456789") == 0xBB3D  # the CRC-16/ARC check value
    assert crc16(b"") == 0


@pytest.mark.parametrize("kbps, rate, channels, side", [(192, 44100, 2, 32), (128, 48000, 1, 17),
                                                         (32, 32000, 2, 32)])
def test_info_frame_layout(kbps: int, rate: int, channels: int, side: int) -> None:
    frame = info_frame(88200, kbps, rate, channels)
    info = gapless(88200, kbps, rate)
    header = int.from_bytes(frame[:4], "big")
    assert header >> 21 == 0x7FF and (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1  # MPEG-1 L III
    assert (header >> 16) & 1 == 1  # no CRC on the frame
    assert (header >> 10) & 3 == (44100, 48000, 32000).index(rate) and (header >> 9) & 1 == 0
    assert ((header >> 6) & 3 == 3) == (channels == 1)
    index = (header >> 12) & 15
    kbps_of_frame = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[index]
    assert len(frame) == frame_bytes(kbps_of_frame, rate)
    # 32 kb/s at 32 kHz is 144 bytes: too small for the tag, so the frame is at the first rate it fits.
    assert kbps_of_frame == (kbps if kbps >= 64 else 48)
    assert frame[4 : 4 + side] == bytes(side)
    at = 4 + side
    assert frame[at : at + 4] == b"Info"
    assert int.from_bytes(frame[at + 4 : at + 8], "big") == 0x0F
    assert int.from_bytes(frame[at + 8 : at + 12], "big") == info.frames
    assert int.from_bytes(frame[at + 12 : at + 16], "big") == len(frame) + info.audio_bytes
    toc = frame[at + 16 : at + 116]
    assert toc[0] == 0 and list(toc) == sorted(toc)
    lame = at + LAME_TAG_OFFSET
    assert frame[lame : lame + 9] == b"LAME3.100"
    delay_padding = int.from_bytes(frame[lame + 21 : lame + 24], "big")
    assert (delay_padding >> 12, delay_padding & 0xFFF) == (LAME_DELAY, info.padding)
    assert int.from_bytes(frame[lame + 28 : lame + 32], "big") == len(frame) + info.audio_bytes
    crc_at = lame + 34
    assert int.from_bytes(frame[crc_at : crc_at + 2], "big") == crc16(frame[:crc_at])
    assert frame[crc_at + 2 :] == bytes(len(frame) - crc_at - 2)
    # FFmpeg's decoder trims delay + 529 at the start and padding - 529 at the end.
    assert info.padding >= DECODER_DELAY


def test_info_frame_refuses_what_mpeg1_cannot_say() -> None:
    with pytest.raises(ValueError):
        info_frame(100, 192, 22050, 2)
    with pytest.raises(ValueError):
        info_frame(100, 150, 44100, 2)
    with pytest.raises(ValueError):
        info_frame(100, 192, 44100, 6)
