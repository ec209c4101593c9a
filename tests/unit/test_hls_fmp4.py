"""CMAF boxes, read back with an independent parser, and FLAC frame renumbering."""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.hls import flac_frames, fmp4
from revenge.hls.profiles import PROFILES, output_format
from revenge.hls.rendition import encoder_setup
from tests.hls_support import parse_fragment, root, split_samples


def track(codec: str, rate: int = 44100, channels: int = 2, total: int = 573_423) -> fmp4.TrackInfo:
    profile = {"aac": "aac-128", "opus": "opus-128", "flac": "flac"}[codec]
    fmt = output_format(PROFILES[profile], rate, channels)
    delay, config = encoder_setup(fmt, "twoloop")
    priming = delay  # the encoder delay is kept (FLAC has none)
    return fmp4.TrackInfo(codec, fmt.sample_rate, fmt.channels, fmt.bits_per_sample, fmt.frame_size, priming,
                          total, fmt.bit_rate, config)


def test_aac_init_segment() -> None:
    info = track("aac")
    top = root(fmp4.init_segment(info))
    assert [b.type for b in top.children] == ["ftyp", "moov"]
    ftyp = top.children[0].payload
    assert ftyp[:4] == b"iso6" and b"cmfc" in ftyp[8:]
    mvhd = top.find("moov/mvhd").payload
    assert struct.unpack_from(">II", mvhd, 12) == (44100, 573_423)  # timescale, duration
    tkhd = top.find("moov/trak/tkhd")
    assert tkhd.flags & 1 and struct.unpack_from(">I", tkhd.payload, 12)[0] == 1  # enabled, track 1
    elst = top.find("moov/trak/edts/elst").payload
    # One edit: all audio, from the first sample after the encoder's priming frame.
    assert struct.unpack_from(">IIiHH", elst, 4) == (1, 573_423, 1024, 1, 0)
    # ... and the same said as iTunes' gapless note, after the trak, for FFmpeg 5 (see fmp4).
    assert [b.type for b in top.find("moov").children] == ["mvhd", "trak", "mvex", "udta"]
    udta = top.find("moov/udta").payload
    note = fmp4.itunsmpb_text(1024, 573_423, 1024).encode()
    assert b"com.apple.iTunes" in udta and b"iTunSMPB" in udta and note in udta
    assert note.split()[1:4] == [b"00000400", b"%08X" % (-(1024 + 573_423) % 1024), b"%016X" % 573_423]
    mdhd = top.find("moov/trak/mdia/mdhd").payload
    assert struct.unpack_from(">I", mdhd, 12)[0] == 44100
    assert top.find("moov/trak/mdia/hdlr").payload[8:12] == b"soun"
    stsd = top.find("moov/trak/mdia/minf/stbl/stsd").payload
    entry = stsd[8:]
    size, kind = struct.unpack_from(">I4s", entry)
    assert kind == b"mp4a" and size == len(entry)
    channels, bits, _, _, rate_fixed = struct.unpack_from(">HHHHI", entry, 8 + 16)
    assert (channels, bits, rate_fixed >> 16) == (2, 16, 44100)
    esds = entry[8 + 28 :]
    assert esds[4:8] == b"esds"
    # The DecoderSpecificInfo (tag 5) is the encoder's AudioSpecificConfig: AAC-LC (2), 44.1 kHz, stereo.
    at = esds.index(bytes([0x05, 0x80, 0x80, 0x80]))
    length = esds[at + 4]
    asc = esds[at + 5 : at + 5 + length]
    assert asc == info.codec_config and asc[0] >> 3 == 2
    assert esds[esds.index(bytes([0x04, 0x80])) + 5] == 0x40  # objectTypeIndication: MPEG-4 audio
    trex = top.find("moov/mvex/trex").payload
    assert struct.unpack_from(">IIIII", trex, 4) == (1, 1, 1024, 0, fmp4.SYNC_SAMPLE_FLAGS)
    assert struct.unpack_from(">I", top.find("moov/mvex/mehd").payload, 4)[0] == 573_423
    for empty in ("stts", "stsc", "stco"):
        assert struct.unpack_from(">I", top.find(f"moov/trak/mdia/minf/stbl/{empty}").payload, 4)[0] == 0


def test_opus_init_segment_carries_dops_and_the_pre_skip_edit() -> None:
    info = track("opus", rate=48000, channels=1, total=480_000)
    top = root(fmp4.init_segment(info))
    elst = top.find("moov/trak/edts/elst").payload
    assert struct.unpack_from(">IIi", elst, 4) == (1, 480_000, 312)
    entry = top.find("moov/trak/mdia/minf/stbl/stsd").payload[8:]
    assert entry[4:8] == b"Opus"
    dops = entry[8 + 28 :]
    assert dops[4:8] == b"dOps"
    version, channels, pre_skip, rate, gain, family = struct.unpack_from(">BBHIhB", dops, 8)
    assert (version, channels, pre_skip, rate, gain, family) == (0, 1, 312, 48000, 0, 0)
    assert b"cmfc" in top.children[0].payload


def test_flac_init_segment_carries_dfla_streaminfo() -> None:
    info = track("flac", rate=96000, channels=2)
    top = root(fmp4.init_segment(info))
    entry = top.find("moov/trak/mdia/minf/stbl/stsd").payload[8:]
    assert entry[4:8] == b"fLaC"
    assert struct.unpack_from(">I", entry, 8 + 24)[0] == 0  # 96 kHz does not fit 16.16: STREAMINFO has it
    dfla = entry[8 + 28 :]
    assert dfla[4:8] == b"dfLa"
    block = dfla[12:]
    assert block[0] == 0x80 and int.from_bytes(block[1:4], "big") == 34  # last block, STREAMINFO, 34 bytes
    streaminfo = block[4:]
    assert struct.unpack_from(">HH", streaminfo) == (4096, 4096)
    rate = int.from_bytes(streaminfo[10:13], "big") >> 4
    assert rate == 96000
    assert b"cmfc" not in top.children[0].payload


def test_media_segment_round_trips_through_an_independent_parser() -> None:
    samples = [bytes([i]) * (100 + i) for i in range(7)]
    data = fmp4.media_segment(5, 2**33 + 7, 1024, samples)
    fragment = parse_fragment(data)
    assert fragment.sequence == 5
    assert fragment.tfdt == 2**33 + 7  # 64-bit tfdt: long books at high rates
    assert fragment.default_duration == 1024
    assert list(split_samples(fragment)) == samples
    with pytest.raises(ValueError):
        fmp4.media_segment(1, 0, 1024, [])


def test_a_short_last_sample_carries_its_own_duration() -> None:
    samples = [bytes([i]) * (50 + i) for i in range(5)]
    fragment = parse_fragment(fmp4.media_segment(9, 4096 * 40, 4096, samples, last_duration=2720))
    assert fragment.durations == (4096, 4096, 4096, 4096, 2720)
    assert list(split_samples(fragment)) == samples
    # A last sample of the default length needs no per-sample durations (the bytes stay as before).
    assert fmp4.media_segment(9, 0, 4096, samples, 4096) == fmp4.media_segment(9, 0, 4096, samples)
    with pytest.raises(ValueError):
        fmp4.media_segment(1, 0, 4096, samples, last_duration=0)


@pytest.mark.parametrize("count", [1, 2, 7, 258, 301])
def test_media_segment_overhead_is_everything_but_the_samples(count: int) -> None:
    samples = [bytes([i % 256]) * (1 + i % 13) for i in range(count)]
    data = fmp4.media_segment(3, 2**33, 960, samples)
    assert fmp4.media_segment_overhead(count) == len(data) - sum(len(s) for s in samples)
    assert fmp4.media_segment_overhead(count) == 104 + 4 * count
    short = fmp4.media_segment(3, 2**33, 960, samples, last_duration=17)
    assert fmp4.media_segment_overhead(count, durations=True) == len(short) - sum(len(s) for s in samples)
    assert fmp4.media_segment_overhead(count, durations=True) == 104 + 8 * count
    with pytest.raises(ValueError):
        fmp4.media_segment_overhead(0)


def _flac_frames(count: int = 4, rate: int = 44100) -> list[bytes]:
    ctx = av.CodecContext.create("flac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, "stereo", "s16"
    ctx.time_base = Fraction(1, rate)
    ctx.options = {"frame_size": "4096"}
    ctx.open()
    rng = np.random.default_rng(3)
    packets = []
    for i in range(count):
        data = (rng.standard_normal((1, 8192)) * 3000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = rate, i * 4096
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    return [bytes(p) for p in packets if p.size]


@given(number=st.integers(0, 2**36 - 1))
def test_flac_number_coding_is_utf8_where_utf8_exists(number: int) -> None:
    coded = flac_frames.encode_number(number)
    if number < 0x110000 and not 0xD800 <= number <= 0xDFFF:
        assert coded == chr(number).encode("utf-8")
    assert len(coded) == next(n for n, limit in enumerate((0, 1 << 7, 1 << 11, 1 << 16, 1 << 21, 1 << 26,
                                                           1 << 31, 1 << 36)) if number < limit)


FRAMES = _flac_frames()


@given(index=st.integers(0, len(FRAMES) - 1), number=st.integers(0, 2**31 - 1))
def test_flac_renumbering_keeps_both_checksums_valid(index: int, number: int) -> None:
    frame = FRAMES[index]
    out = flac_frames.renumber(frame, number)
    coded = flac_frames.encode_number(number)
    assert out[4 : 4 + len(coded)] == coded
    header_len = 4 + len(coded)  # 44.1 kHz and block 4096 have codes: no extra header bytes
    assert flac_frames.crc8(out[:header_len]) == out[header_len]
    assert flac_frames.crc16(out[:-2]) == int.from_bytes(out[-2:], "big")  # full recomputation
    assert out[header_len + 1 : -2] == frame[len(frame) - len(out) + header_len + 1 : -2]  # audio untouched


def test_renumbered_frames_decode_with_crc_checks_on() -> None:
    ctx = av.CodecContext.create("flac", "r")
    ctx.options = {"err_detect": "crccheck+explode"}
    frames = [flac_frames.renumber(f, 1000 + i) for i, f in enumerate(FRAMES)]
    decoded = 0
    for data in frames:
        for frame in ctx.decode(av.Packet(data)):
            decoded += frame.samples
    assert decoded == 4096 * len(FRAMES)


def test_crc16_shift_equals_feeding_zero_bytes() -> None:
    for state in (0, 1, 0x8005, 0xFFFF, 0x1234):
        for zeros in (0, 1, 2, 17, 1000, 4097):
            assert flac_frames.crc16_shift(state, zeros) == flac_frames.crc16(bytes(zeros), state)
