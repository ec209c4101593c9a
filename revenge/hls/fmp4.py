"""CMAF / fragmented MP4 for one audio track, written box by box (ISO/IEC 14496-12, 14496-14,
the Opus-in-ISOBMFF and FLAC-in-ISOBMFF mappings).

* :func:`init_segment`: ``ftyp`` + ``moov`` (``mvex``/``trex``, an edit list that drops the
  encoder's priming and end padding, and the codec's ``esds``/``dOps``/``dfLa``; for AAC with
  priming also an ``iTunSMPB`` tag, the gapless note of players that ignore fragmented edit lists).
* :func:`media_segment`: one ``moof`` (``mfhd``, ``traf`` with ``tfhd``/``tfdt``/``trun`` and
  per-sample sizes, and durations when the last sample is short) + one ``mdat``. ``tfdt`` is the
  segment's first media sample, so consecutive segments are continuous by construction.

Writing the boxes here (instead of driving FFmpeg's mov muxer) keeps each segment a pure function
of its packets: no muxer state, exact timestamps, no per-segment moov.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

TRACK_ID = 1
# Audio samples are all sync samples: sample_depends_on = 2 ("depends on no other sample").
SYNC_SAMPLE_FLAGS = 0x02000000
_UINT32_MAX = 0xFFFFFFFF
_IDENTITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """Everything the init segment says about the track."""

    codec: str  # "aac", "opus" or "flac"
    sample_rate: int  # also the movie and media timescale: one tick per sample
    channels: int
    bits_per_sample: int
    frame_size: int  # default sample duration
    priming: int  # media samples before presentation starts (edit list media_time)
    total: int  # presentation samples (edit list duration)
    bit_rate: int  # nominal, for esds (0 if unknown)
    codec_config: bytes  # AAC AudioSpecificConfig, OpusHead, or FLAC STREAMINFO (34 bytes)


def _brands(codec: str) -> list[bytes]:
    # cmfc: a CMAF track; AAC-LC and Opus have CMAF media profiles, FLAC has none.
    return [b"iso6", b"cmfc", b"mp41"] if codec in ("aac", "opus") else [b"iso6", b"mp41"]


def _ftyp(codec: str) -> bytes:
    return box(b"ftyp", b"iso6", struct.pack(">I", 0), *_brands(codec))


def _mvhd(timescale: int, duration: int) -> bytes:
    if duration <= _UINT32_MAX:
        version, head = 0, struct.pack(">IIII", 0, 0, timescale, duration)
    else:
        version, head = 1, struct.pack(">QQIQ", 0, 0, timescale, duration)
    return full_box(b"mvhd", version, 0, head, struct.pack(">IH10x", 0x00010000, 0x0100), _IDENTITY_MATRIX,
                    bytes(24), struct.pack(">I", TRACK_ID + 1))


def _tkhd(duration: int) -> bytes:
    if duration <= _UINT32_MAX:
        head = struct.pack(">IIII", 0, 0, TRACK_ID, 0) + struct.pack(">I", duration)
        version = 0
    else:
        head = struct.pack(">QQII", 0, 0, TRACK_ID, 0) + struct.pack(">Q", duration)
        version = 1
    # flags 3: track enabled, in movie. alternate_group 1 as every audio track of one kind.
    return full_box(b"tkhd", version, 3, head, struct.pack(">8xHHHH", 0, 1, 0x0100, 0), _IDENTITY_MATRIX,
                    struct.pack(">II", 0, 0))


def _elst(duration: int, media_time: int) -> bytes:
    """One edit: present ``duration`` samples starting at media sample ``media_time``."""
    if duration <= _UINT32_MAX and media_time <= 0x7FFFFFFF:
        entry = struct.pack(">Ii", duration, media_time)
        version = 0
    else:
        entry = struct.pack(">Qq", duration, media_time)
        version = 1
    return box(b"edts", full_box(b"elst", version, 0, struct.pack(">I", 1), entry, struct.pack(">hh", 1, 0)))


def _mdhd(timescale: int) -> bytes:
    language = 0x55C4  # "und", packed ISO-639-2/T
    return full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, language, 0))


def _hdlr() -> bytes:
    return full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"soun"), b"SoundHandler\x00")


def _descriptor(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    size = bytes([0x80 | ((n >> 21) & 0x7F), 0x80 | ((n >> 14) & 0x7F), 0x80 | ((n >> 7) & 0x7F), n & 0x7F])
    return bytes([tag]) + size + payload


def _esds(config: bytes, bit_rate: int) -> bytes:
    decoder_specific = _descriptor(0x05, config)
    # objectTypeIndication 0x40 = MPEG-4 Audio; streamType 5 (audio) << 2 | upStream 0 | reserved 1.
    decoder_config = _descriptor(
        0x04, struct.pack(">BB", 0x40, 0x15) + (6144 * 2 // 8).to_bytes(3, "big")
        + struct.pack(">II", bit_rate, bit_rate) + decoder_specific,
    )
    es = _descriptor(0x03, struct.pack(">HB", TRACK_ID, 0) + decoder_config + _descriptor(0x06, b"\x02"))
    return full_box(b"esds", 0, 0, es)


def _dops(opus_head: bytes) -> bytes:
    """dOps from libopus' OpusHead (RFC 7845): same fields, big-endian, version 0."""
    if len(opus_head) < 19 or opus_head[:8] != b"OpusHead":
        raise ValueError("not an OpusHead")
    channels = opus_head[9]
    pre_skip, input_rate, gain = struct.unpack_from("<HIh", opus_head, 10)
    family = opus_head[18]
    body = struct.pack(">BBHIhB", 0, channels, pre_skip, input_rate, gain, family)
    if family != 0:
        body += opus_head[19:]  # stream count, coupled count, channel mapping: byte-for-byte
    return box(b"dOps", body)


def _dfla(streaminfo: bytes) -> bytes:
    if len(streaminfo) != 34:
        raise ValueError("FLAC STREAMINFO must be 34 bytes")
    header = bytes([0x80]) + (34).to_bytes(3, "big")  # last metadata block, type 0 STREAMINFO
    return full_box(b"dfLa", 0, 0, header, streaminfo)


def _sample_entry(track: TrackInfo) -> bytes:
    if track.codec == "aac":
        kind, child = b"mp4a", _esds(track.codec_config, track.bit_rate)
        sample_size = 16
    elif track.codec == "opus":
        kind, child = b"Opus", _dops(track.codec_config)
        sample_size = 16
    elif track.codec == "flac":
        kind, child = b"fLaC", _dfla(track.codec_config)
        sample_size = track.bits_per_sample
    else:
        raise ValueError(f"no sample entry for codec {track.codec!r}")
    # The 16.16 sample rate field cannot hold rates above 65535; the codec config carries the rate.
    rate_field = track.sample_rate << 16 if track.sample_rate <= 0xFFFF else 0
    head = struct.pack(">6xH8xHHHHI", 1, track.channels, sample_size, 0, 0, rate_field)
    return box(kind, head, child)


def _stbl(track: TrackInfo) -> bytes:
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(track)),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )


def _minf(track: TrackInfo) -> bytes:
    dref = full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))
    return box(b"minf", full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0)), box(b"dinf", dref), _stbl(track))


def _mvex(track: TrackInfo) -> bytes:
    if track.total <= _UINT32_MAX:
        mehd = full_box(b"mehd", 0, 0, struct.pack(">I", track.total))
    else:
        mehd = full_box(b"mehd", 1, 0, struct.pack(">Q", track.total))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, track.frame_size, 0, SYNC_SAMPLE_FLAGS))
    return box(b"mvex", mehd, trex)


def itunsmpb_text(priming: int, total: int, frame_size: int) -> str:
    """The iTunes gapless note: delay, end padding and audio samples, in hex (as iTunes writes it)."""
    padding = -(priming + total) % frame_size
    return f" 00000000 {priming:08X} {padding:08X} {total:016X}" + " 00000000" * 8


def _udta_itunsmpb(track: TrackInfo) -> bytes:
    """``udta/meta/ilst`` with one ``----`` item ``com.apple.iTunes:iTunSMPB``. FFmpeg reads it into
    the stream's start padding (so up to 5.x, which ignores edit lists in fragmented MP4, still
    drops the AAC priming); players that honour the edit list drop the same samples once."""
    text = itunsmpb_text(track.priming, track.total, track.frame_size).encode("ascii")
    item = box(b"----", full_box(b"mean", 0, 0, b"com.apple.iTunes"), full_box(b"name", 0, 0, b"iTunSMPB"),
               box(b"data", struct.pack(">II", 1, 0), text))  # type 1: UTF-8, locale 0
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s4s8x", 0, b"mdir", b"appl"), b"\x00")
    return box(b"udta", full_box(b"meta", 0, 0, hdlr, box(b"ilst", item)))


def init_segment(track: TrackInfo) -> bytes:
    """``ftyp`` + ``moov`` for the track. Movie and media timescale are the sample rate."""
    trak = box(
        b"trak",
        _tkhd(track.total),
        _elst(track.total, track.priming),
        box(b"mdia", _mdhd(track.sample_rate), _hdlr(), _minf(track)),
    )
    # After the trak: FFmpeg applies the tag to the last stream read.
    extra = [_udta_itunsmpb(track)] if track.codec == "aac" and track.priming else []
    return _ftyp(track.codec) + box(b"moov", _mvhd(track.sample_rate, track.total), trak, _mvex(track),
                                    *extra)


_MDAT_HEADER = 8


def _moof_size(sample_count: int, durations: bool = False) -> int:
    """The ``moof`` :func:`media_segment` writes: its size depends on the sample count only (and on
    whether the ``trun`` carries per-sample durations)."""
    mfhd = 8 + 4 + 4  # box header, version/flags, sequence_number
    tfhd = 8 + 4 + 12  # box header, version/flags, track_ID, default duration and flags
    tfdt = 8 + 4 + 8  # box header, version/flags, 64-bit base_media_decode_time
    per_sample = 8 if durations else 4  # (duration,) size
    trun = 8 + 4 + 4 + 4 + per_sample * sample_count  # box header, version/flags, count, data_offset
    return 8 + mfhd + 8 + tfhd + tfdt + trun  # moof and traf headers


def media_segment_overhead(sample_count: int, durations: bool = False) -> int:
    """Bytes of a :func:`media_segment` of ``sample_count`` samples that are not sample data:
    the ``moof`` and the ``mdat`` header (104 + 4 per sample, + 4 more per sample when the last
    sample is short and the ``trun`` carries every sample's duration)."""
    if sample_count < 1:
        raise ValueError("a media segment needs at least one sample")
    return _moof_size(sample_count, durations) + _MDAT_HEADER


def media_segment(sequence: int, base_media_decode_time: int, sample_duration: int,
                  samples: Sequence[bytes], last_duration: int | None = None) -> bytes:
    """``moof`` + ``mdat`` carrying ``samples`` (encoded packets), each ``sample_duration`` long,
    the last one ``last_duration`` long when given (a FLAC stream's short last frame).

    ``sequence`` starts at 1 for segment 0; ``base_media_decode_time`` is the first sample's
    position on the media timeline.
    """
    if not samples:
        raise ValueError("a media segment needs at least one sample")
    count = len(samples)
    # A short last sample needs its own duration, and a trun has durations for all its samples or
    # none: MSE players (hls.js, Shaka) sum trun durations, and ignore the edit list that would
    # otherwise trim the stream's end. One trun keeps every demuxer we know happy.
    if last_duration is not None and last_duration != sample_duration:
        if last_duration < 1:
            raise ValueError("a sample lasts at least one tick")
        durations = [sample_duration] * (count - 1) + [last_duration]
        entries = struct.pack(f">{2 * count}I", *(v for d, s in zip(durations, samples, strict=True)
                                                  for v in (d, len(s))))
        short = True
    else:
        entries = struct.pack(f">{count}I", *(len(s) for s in samples))
        short = False
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    # default-base-is-moof | default-sample-duration-present | default-sample-flags-present
    tfhd = full_box(b"tfhd", 0, 0x020000 | 0x000008 | 0x000020,
                    struct.pack(">III", TRACK_ID, sample_duration, SYNC_SAMPLE_FLAGS))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_media_decode_time))
    moof_size = _moof_size(count, short)
    data_offset = moof_size + _MDAT_HEADER  # from the moof's first byte to the first sample in mdat
    # data-offset-present | sample-size-present (| sample-duration-present)
    flags = 0x000001 | 0x000200 | (0x000100 if short else 0)
    trun = full_box(b"trun", 0, flags, struct.pack(">Ii", count, data_offset), entries)
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    assert len(moof) == moof_size
    return moof + box(b"mdat", *samples)
