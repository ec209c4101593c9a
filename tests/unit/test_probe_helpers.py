"""The pure parts of the probe: tag parsing, Opus TOC and head, ID3v2 size, Xing/VBRI, chapters, and
the verdicts of the tail check."""

from __future__ import annotations

import struct
from fractions import Fraction

import pytest

from revenge.library.mp3_frames import Mp3Totals, id3v2_size, mp3_declared_totals
from revenge.library.probe import (
    EmbeddedChapter,
    FileHead,
    chapters_from_container,
    demuxer_for,
    opus_packet_samples,
    opus_pre_skip,
    tags_from_metadata,
)
from revenge.library.tags import parse_number
from revenge.library.verify import end_problem, mp3_appended_bytes


@pytest.mark.parametrize(("text", "number"), [
    ("3", 3), ("03", 3), ("3/12", 3), (" 7 / 9 ", 7), ("12 of 20", 12), ("0", None), ("00/10", None),
    ("", None), (None, None), ("A1", None), ("/5", None), ("1234567", None), ("999999", 999999),
])
def test_parse_number(text: str | None, number: int | None) -> None:
    assert parse_number(text) == number


def test_tags_merge_sources_with_aliases_first_source_winning() -> None:
    container = {"TITLE": "From container", "ALBUMARTIST": "Band", "TRACKNUMBER": "4/10"}
    stream = {"title": "From stream", "artist": "Singer", "DISCNUMBER": "2", "genre": "  "}
    tags = tags_from_metadata(container, stream)
    assert tags.title == "From container" and tags.artist == "Singer" and tags.album_artist == "Band"
    assert (tags.track_number, tags.disc_number) == (4, 2)
    assert tags.genre is None  # blank is absent
    assert tags.album is None


def test_tags_multi_values_and_overlong_text() -> None:
    tags = tags_from_metadata({"artist": "A\x00B", "title": "x" * 5000})
    assert tags.artist == "A; B"
    assert tags.title is not None and len(tags.title) == 1000


@pytest.mark.parametrize(("toc", "extra", "samples"), [
    (0b00000_0_00, b"", 480),  # SILK 10 ms, 1 frame
    (0b00011_0_00, b"", 2880),  # SILK 60 ms
    (0b01100_0_00, b"", 480),  # Hybrid 10 ms
    (0b01101_0_01, b"", 1920),  # Hybrid 20 ms, 2 frames
    (0b10000_0_00, b"", 120),  # CELT 2.5 ms
    (0b11111_0_00, b"", 960),  # CELT 20 ms
    (0b11111_1_10, b"", 1920),  # 2 frames, different sizes
    (0b11111_0_11, bytes([0b0000_0011]), 2880),  # code 3: 3 frames
    (0b10000_0_11, bytes([0b1011_0000 | 48]), 48 * 120),  # code 3 with VBR/padding flags
])
def test_opus_packet_samples(toc: int, extra: bytes, samples: int) -> None:
    assert opus_packet_samples(bytes([toc]) + extra + b"\x00" * 10) == samples


def test_opus_packet_edge_cases() -> None:
    assert opus_packet_samples(b"") == 0
    assert opus_packet_samples(bytes([0b11111_0_11])) == 0  # code 3 without its count byte


def test_opus_pre_skip() -> None:
    head = b"OpusHead" + bytes([1, 2]) + struct.pack("<H", 312) + struct.pack("<I", 48000) + b"\x00\x00\x00"
    assert opus_pre_skip(head) == 312
    assert opus_pre_skip(None) == 0 and opus_pre_skip(b"Opus") == 0
    assert opus_pre_skip(b"OpusTags........") == 0


def test_id3v2_size() -> None:
    assert id3v2_size(b"ID3\x04\x00\x00\x00\x00\x02\x01") == 10 + 257
    assert id3v2_size(b"ID3\x04\x00\x10\x00\x00\x00\x0a") == 10 + 10 + 10  # with footer
    assert id3v2_size(b"\xff\xfb\x90\x00" + b"\x00" * 6) == 0
    assert id3v2_size(b"ID3") == 0


def _mpeg1_stereo_frame(tag: bytes, fields: bytes) -> bytes:
    header = bytes([0xFF, 0xFB, 0x90, 0x00])  # MPEG-1 Layer III, 128 kb/s, 44.1 kHz, stereo
    return header + b"\x00" * 32 + tag + fields + b"\x00" * 400


def test_xing_and_info_headers() -> None:
    frame = _mpeg1_stereo_frame(b"Info", struct.pack(">III", 3, 543, 227159))
    assert mp3_declared_totals(frame) == Mp3Totals(543, 227159, constant=True)
    frame = _mpeg1_stereo_frame(b"Xing", struct.pack(">II", 1, 99))
    assert mp3_declared_totals(frame) == Mp3Totals(99, None)
    frame = _mpeg1_stereo_frame(b"Xing", struct.pack(">II", 2, 5000))  # bytes but no frame count
    assert mp3_declared_totals(frame) == Mp3Totals(None, 5000)


def test_mono_mpeg2_xing_offset() -> None:
    header = bytes([0xFF, 0xF3, 0x90, 0xC0])  # MPEG-2 Layer III, mono: side info is 9 bytes
    frame = header + b"\x00" * 9 + b"Xing" + struct.pack(">II", 1, 42) + b"\x00" * 100
    assert mp3_declared_totals(frame) == Mp3Totals(42, None)


def test_vbri_header() -> None:
    frame = _mpeg1_stereo_frame(b"VBRI", struct.pack(">HHH", 1, 0, 0) + struct.pack(">II", 9000, 77))
    assert mp3_declared_totals(frame) == Mp3Totals(77, 9000)


def test_no_vbr_header() -> None:
    assert mp3_declared_totals(_mpeg1_stereo_frame(b"\x00\x00\x00\x00", b"")) is None
    assert mp3_declared_totals(b"junk" * 100) is None
    assert mp3_declared_totals(b"") is None
    # garbage before the first frame is skipped
    assert mp3_declared_totals(b"\x00\x01" + _mpeg1_stereo_frame(b"Info", struct.pack(">II", 1, 5))) == \
        Mp3Totals(5, None, constant=True)


def test_chapters_from_container_clamp_sort_and_drop_empty() -> None:
    ms = Fraction(1, 1000)
    raw = [
        {"start": 2000, "end": 9000, "time_base": ms, "metadata": {"title": "Two"}},
        {"start": 0, "end": 2000, "time_base": ms, "metadata": {"title": "One"}},
        {"start": 4000, "end": 4000, "time_base": ms, "metadata": {}},  # empty
        {"start": 0, "end": 1, "time_base": None, "metadata": {}},  # unusable
        {"start": 90, "end": 180, "time_base": Fraction(1, 90)},  # seconds in 1/90 s ticks
    ]
    assert chapters_from_container(raw, duration_ms=5000) == (
        EmbeddedChapter(0, 2000, "One"), EmbeddedChapter(1000, 2000, None),
        EmbeddedChapter(2000, 5000, "Two"))


@pytest.mark.parametrize(("declared", "actual", "extra"), [
    (None, 10_000, 0),  # no byte count in the header: nothing to compare
    (0, 10_000, 0),
    (16_000, 15_000, 0),  # shorter: cut short, counted by frames instead
    (16_000, 16_000, 0),
    (16_000, 17_000, 0),  # an ID3v1 or APE tag behind the frames: within FFmpeg's 1/16
    (16_000, 17_001, 1_001),  # past 1/16: FFmpeg estimates the length from the bit rate
    (641_148, 841_446, 200_298),
])
def test_mp3_appended_bytes_follows_ffmpegs_rule(declared: int | None, actual: int, extra: int) -> None:
    assert mp3_appended_bytes(declared, actual) == extra


def test_end_problem_allows_a_frame_short_and_any_length_past() -> None:
    rate = 48_000
    assert end_problem(96_000, 96_000, rate, 1024) is None
    assert end_problem(96_000, 96_000 - 1152, rate, 1024) is None  # at least one MP3 frame of slack
    assert end_problem(96_000, 96_000 - 4096, rate, 4608) is None  # a FLAC block
    assert end_problem(96_000, 97_000, rate, 1024) is None  # AAC end padding past an edit list
    short = end_problem(2_880_000, 1_440_000, rate, 4608)
    assert short is not None and "holds 30.0 s" in short and "declares 60.0 s" in short
    nothing = end_problem(96_000, None, rate, 1024)
    assert nothing is not None and "do not decode" in nothing


MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64])  # MPEG 1 Layer III, 128 kb/s, 44.1 kHz, joint stereo
ADTS_FRAME = bytes([0xFF, 0xF1, 0x50, 0x80])  # AAC in ADTS: a sync word too, but layer 0


@pytest.mark.parametrize(("start", "after_tag", "demuxer"), [
    (b"ID3\x04\x00\x00\x00\x00\x01\x00\x00\x00", MP3_FRAME + bytes(100), "mp3"),
    (MP3_FRAME + bytes(8), MP3_FRAME + bytes(100), "mp3"),  # no tag: ``after_tag`` is the file's start
    (b"ID3\x04\x00\x00\x00\x00\x01\x00\x00\x00", b"fLaC" + bytes(100), None),  # ID3 in front of a FLAC
    (b"ID3\x04\x00\x00\x00\x00\x01\x00\x00\x00", ADTS_FRAME + bytes(100), None),
    (b"fLaC\x00\x00\x00\x22" + bytes(4), b"fLaC" + bytes(100), "flac"),
    (b"OggS\x00\x02" + bytes(6), b"OggS" + bytes(100), "ogg"),
    (b"RIFF\x24\x00\x00\x00WAVE", b"RIFF" + bytes(100), "wav"),
    (b"RIFF\x24\x00\x00\x00AVI ", b"RIFF" + bytes(100), None),
    (b"\x00\x00\x00\x20ftypM4A ", bytes(100), "mov"),
    (b"MAC \x96\x0f" + bytes(6), bytes(100), None),  # Monkey's Audio: FFmpeg probes it
    (b"", b"", None),
])
def test_the_demuxer_named_by_magic_bytes_else_none(start: bytes, after_tag: bytes,
                                                    demuxer: str | None) -> None:
    assert demuxer_for(FileHead(start, after_tag, len(after_tag))) == demuxer
