"""Probe one audio file with PyAV: format, codec, exact sample count, tags and embedded chapters.

The sample count is the one thing that must be exact (the HLS planner builds its segment grid on it),
so it is taken from where the container *declares* it exactly, and counted from packets (demuxed,
never decoded) where it does not:

- FLAC: STREAMINFO total samples (``stream.duration`` in 1/rate).
- MP3: the Xing/Info/VBRI frame count, with the LAME encoder delay and padding removed (FFmpeg's mp3
  demuxer turns these into ``stream.duration``). Without such a header FFmpeg only *estimates* the
  duration from the bit rate, so those files are counted by packets (1152 samples per frame); so
  are files shorter than the byte count their header declares (cut short).
- MP4/M4A/M4B: the edit list (``stream.duration``, priming and end padding removed). The mov muxer
  writes the edit list in the movie time scale (FFmpeg: 1/1000 s), so a length that is not a whole
  number of milliseconds is declared only to 1 ms — still far closer than the decoder's count,
  which includes the encoder's end padding.
- Ogg: the last granule position; for Opus minus the pre-skip from the OpusHead.
- WAV, AIFF, WavPack, CAF, …: the data size / block count the header declares.
- Anything else (ADTS AAC, Matroska/WebM, …): the sum of packet durations (Opus packets counted from
  their TOC byte) minus the skip/discard samples the demuxer attaches to the first and last packets.

Whatever the source of the count, the file's last seconds are then decoded (``verify``): a header
that declares more audio than the file holds (a FLAC cut short, an MP3 with bytes appended) makes
the file a failure with the reason, instead of an item that fails mid-play. An MP3 whose Xing/Info
header also counts the stream's bytes, and that holds at least those bytes, is shown complete by
its size, so its end is not decoded (a fifth of a probe's time).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

from revenge.library.art import embedded_art_id
from revenge.library.model import MediaFile
from revenge.library.tags import (
    MAX_TAG_LENGTH,
    TagError,
    Tags,
    loose_fields,
    read_tags_parsed,
    tags_from_fields,
)
from revenge.library.verify import check_tail, mp3_appended_bytes

# Formats (FFmpeg demuxer names, first of the comma list) whose stream.duration is the exact count.
_DECLARED_EXACT = frozenset({"flac", "mov", "wav", "w64", "aiff", "wv", "caf", "tta", "ape", "ogg"})


class ProbeError(Exception):
    """The file cannot be used: the message is the reason the scanner records."""


@dataclass(frozen=True, slots=True)
class EmbeddedChapter:
    """A chapter as the file declares it, on the file's own timeline (ms)."""

    start_ms: int
    end_ms: int
    title: str | None


@dataclass(frozen=True, slots=True)
class Probe:
    file: MediaFile
    tags: Tags
    chapters: tuple[EmbeddedChapter, ...]
    content: str | None = None  # the audio's fingerprint (``AudioHasher``); None: not computed yet
    # The art id of the file's embedded picture (``art.embedded_art_id``), read with its tags, when
    # ``art_read``; a probe stored in the catalog has not read it (the art index reads the file then).
    embedded_art: str | None = None
    art_read: bool = False


CONTENT_BYTES = 256 * 1024  # of the first demuxed audio packets, hashed into the content fingerprint


class AudioHasher:
    """The content fingerprint of a file's audio: BLAKE2b of the bytes of its first demuxed packets
    (up to ``CONTENT_BYTES``: seconds of audio) with the codec, rate, channels and exact sample count.
    Packets are the coded audio without the container's tags (ID3, Vorbis comments, MP4 ``udta``,
    pictures), so the fingerprint survives re-tagging and moving; a re-encode changes it. Reading
    from the start costs no seek, and the exact length tells apart tracks that begin alike (silence)."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=12)
        self._left = CONTENT_BYTES

    @property
    def full(self) -> bool:
        return self._left <= 0

    def feed(self, packet: av.Packet) -> None:
        size = packet.size
        if self._left > 0 and size:
            # The packet's own buffer, not a copy (a packet supports the buffer protocol).
            self._hash.update(packet if size <= self._left else memoryview(packet)[:self._left])
            self._left -= size

    def feed_from(self, container: av.container.InputContainer, stream: av.stream.Stream) -> None:
        for packet in container.demux(stream):
            self.feed(packet)
            if self.full:
                return

    def hexdigest(self, codec: str, rate: int, channels: int, samples: int) -> str:
        self._hash.update(f"\x00{codec}\x00{rate}\x00{channels}\x00{samples}".encode())
        return self._hash.hexdigest()


# ---------------------------------------------------------------------------------------------
# Pure helpers


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.replace("\x00", "; ").strip()
    return text[:MAX_TAG_LENGTH] if text else None


def _merged(*sources: Mapping[str, str]) -> list[tuple[str, str]]:
    """Container and stream metadata as one list of pairs: the first source wins per key (any case)."""
    merged: dict[str, tuple[str, str]] = {}
    for source in sources:
        for key, value in source.items():
            merged.setdefault(key.lower(), (key, value))
    return list(merged.values())


def tags_from_metadata(*sources: Mapping[str, str]) -> Tags:
    """Tags from PyAV's metadata alone (first source wins per key; keys case-insensitive)."""
    return tags_from_fields(loose_fields(_merged(*sources)))


def opus_packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # Hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 0
    return frame * frames


def opus_pre_skip(extradata: bytes | None) -> int:
    """The pre-skip field of an OpusHead (RFC 7845 §5.1); 0 when there is none."""
    if not extradata or len(extradata) < 12 or not extradata.startswith(b"OpusHead"):
        return 0
    return int(struct.unpack_from("<H", extradata, 10)[0])


def id3v2_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of a file (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _mpeg_audio_header(data: bytes, at: int) -> tuple[int, int] | None:
    """(MPEG version id, channel mode) if a plausible Layer III frame header starts at ``at``."""
    if at + 4 > len(data):
        return None
    b1, b2, b3 = data[at + 1], data[at + 2], data[at + 3]
    if data[at] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = (b1 >> 3) & 3  # 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
    layer = (b1 >> 1) & 3  # 1: Layer III
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    return version, b3 >> 6


@dataclass(frozen=True, slots=True)
class Mp3Totals:
    """What a Xing/Info or VBRI header declares: frame count and stream bytes, when present."""

    frames: int | None
    stream_bytes: int | None


def mp3_declared_totals(data: bytes) -> Mp3Totals | None:
    """The Xing/Info or VBRI header of the first MPEG frame (``data`` starts after any ID3v2 tag).
    Only with a frame count is FFmpeg's MP3 duration exact rather than estimated from the bit rate."""
    limit = min(len(data) - 4, 64 * 1024)
    for at in range(max(limit, 0)):
        header = _mpeg_audio_header(data, at)
        if header is None:
            continue
        version, mode = header
        mono = mode == 3
        side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
        xing = at + 4 + side_info
        if data[xing:xing + 4] in (b"Xing", b"Info") and len(data) >= xing + 8:
            flags = struct.unpack_from(">I", data, xing + 4)[0]
            fields = xing + 8
            frames = stream_bytes = None
            if flags & 1 and len(data) >= fields + 4:
                frames = struct.unpack_from(">I", data, fields)[0]
                fields += 4
            if flags & 2 and len(data) >= fields + 4:
                stream_bytes = struct.unpack_from(">I", data, fields)[0]
            return Mp3Totals(frames, stream_bytes)
        vbri = at + 4 + 32
        if data[vbri:vbri + 4] == b"VBRI" and len(data) >= vbri + 18:
            stream_bytes, frames = struct.unpack_from(">II", data, vbri + 10)
            return Mp3Totals(frames, stream_bytes)
        return None
    return None


@dataclass(frozen=True, slots=True)
class FileHead:
    """The first bytes of a file, and for a file that opens with an ID3v2 tag the bytes behind it."""

    start: bytes  # the file's first 12 bytes
    after_tag: bytes  # up to 16 KiB after any ID3v2 tag (the first MPEG frame, its Xing header)
    bytes_after_tag: int  # the file's size less the tag


def _read_head(path: Path) -> FileHead:
    with open(path, "rb") as fh:
        start = fh.read(12)
        tag = id3v2_size(start)
        fh.seek(tag)
        return FileHead(start, fh.read(16 * 1024), os.fstat(fh.fileno()).st_size - tag)


def demuxer_for(head: FileHead) -> str | None:
    """The FFmpeg demuxer a file's magic bytes name without doubt, else None (then FFmpeg probes).
    Named, FFmpeg skips probing every demuxer against the file's head, which for an MP3 with a large
    ID3 tag (a cover) costs more than the rest of opening it."""
    start = head.start
    if _mpeg_audio_header(head.after_tag, 0) is not None:
        return "mp3"  # a Layer III frame right at the start (behind any ID3 tag)
    if start.startswith(b"fLaC"):
        return "flac"
    if start.startswith(b"OggS"):
        return "ogg"
    if start.startswith(b"RIFF") and start[8:12] == b"WAVE":
        return "wav"
    if start[4:8] == b"ftyp":
        return "mov"
    return None


def _to_samples(ticks: int, time_base: Fraction, rate: int) -> int:
    return round(ticks * time_base * rate)


def _ms(ticks: int, time_base: Fraction) -> int:
    return round(ticks * time_base * 1000)


def chapters_from_container(raw: Iterable[Mapping[str, object]],
                            duration_ms: int) -> tuple[EmbeddedChapter, ...]:
    """Embedded chapters clamped to the file, ordered, empty ones dropped."""
    out: list[EmbeddedChapter] = []
    for chapter in raw:
        time_base = chapter.get("time_base")
        start, end = chapter.get("start"), chapter.get("end")
        if not isinstance(time_base, Fraction) or not isinstance(start, int) or not isinstance(end, int):
            continue
        metadata = chapter.get("metadata")
        title = _clean(metadata.get("title")) if isinstance(metadata, Mapping) else None
        start_ms = max(0, min(_ms(start, time_base), duration_ms))
        end_ms = max(start_ms, min(_ms(end, time_base), duration_ms))
        if end_ms > start_ms:
            out.append(EmbeddedChapter(start_ms, end_ms, title))
    out.sort(key=lambda c: c.start_ms)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The probe (I/O)


def _count_by_demuxing(container: av.container.InputContainer, stream: av.stream.Stream, rate: int,
                       hasher: AudioHasher) -> int:
    """Sum packet durations without decoding, minus the declared start skip and end discard (and
    feed the first packets to ``hasher`` on the way)."""
    is_opus = stream.codec_context.codec.canonical_name == "opus"
    time_base = stream.time_base or Fraction(1, rate)
    ticks = 0
    opus_samples = 0
    trimmed = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        hasher.feed(packet)
        if is_opus:
            opus_samples += opus_packet_samples(bytes(packet))
        elif packet.duration:
            ticks += packet.duration
        if packet.has_sidedata("skip_samples"):
            skip = bytes(packet.get_sidedata("skip_samples"))
            if len(skip) >= 8:
                start, end = struct.unpack_from("<II", skip, 0)
                trimmed += start + end
    total = opus_samples * rate // 48000 if is_opus else _to_samples(ticks, time_base, rate)
    return max(0, total - trimmed)


def _declared_count(container: av.container.InputContainer, stream: av.stream.Stream, head: FileHead,
                    rate: int) -> tuple[int | None, bool]:
    """The container's exact declared count, or None when it declares none (or only an estimate); and
    whether the file is shown to hold all of it without decoding its end (an MP3 whose header
    counts its stream's bytes as well as its frames, and has at least those bytes)."""
    fmt = container.format.name.split(",")[0]
    duration = stream.duration
    time_base = stream.time_base
    if duration is None or duration <= 0 or time_base is None:
        return None, False
    if fmt == "mp3":
        stream_bytes = head.bytes_after_tag
        totals = mp3_declared_totals(head.after_tag)
        if totals is None or not totals.frames:
            return None, False
        if totals.stream_bytes is not None and stream_bytes < totals.stream_bytes:
            return None, False  # cut short (an interrupted download): the header counts frames not there
        appended = mp3_appended_bytes(totals.stream_bytes, stream_bytes)
        if appended:
            # FFmpeg then estimates the length from the bit rate: neither it nor the header is right.
            raise ProbeError(f"{appended} bytes follow the {totals.stream_bytes} its MP3 header declares "
                             "(garbage appended, or files joined): its length cannot be known")
        return _to_samples(duration, time_base, rate), totals.stream_bytes is not None
    if fmt not in _DECLARED_EXACT:
        return None, False
    samples = _to_samples(duration, time_base, rate)
    if fmt == "ogg" and stream.codec_context.codec.canonical_name == "opus":
        # FFmpeg's ogg demuxer reports the last granule; the first pre-skip samples are not audio.
        samples -= opus_pre_skip(stream.codec_context.extradata) * rate // 48000
    return samples, False


def probe_file(path: Path, artist_separators: Sequence[str] = ()) -> Probe:
    """Probe ``path`` (a file the scanner found). Raises ProbeError with a readable reason."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ProbeError(f"cannot stat: {exc.strerror or exc}") from exc
    try:
        head = _read_head(path)
        demuxer = demuxer_for(head)
        try:
            container = av.open(str(path), format=demuxer, metadata_errors="replace")
        except av.FFmpegError:
            if demuxer is None:
                raise
            container = av.open(str(path), metadata_errors="replace")  # the magic misled: probe
    except av.FFmpegError as exc:
        raise ProbeError(f"not a readable media file: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise ProbeError(f"cannot open: {exc.strerror or exc}") from exc
    try:
        assert isinstance(container, av.container.InputContainer)
        if not container.streams.audio:
            raise ProbeError("no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        rate = int(ctx.sample_rate or 0)
        channels = int(ctx.channels or 0)
        if rate <= 0 or channels <= 0:
            raise ProbeError(f"unusable audio stream (rate {rate}, channels {channels})")
        codec = ctx.codec.canonical_name  # "mp3", not the decoder's name "mp3float"
        declared, complete = _declared_count(container, stream, head, rate)
        fmt = container.format.name
        metadata = _merged(container.metadata, stream.metadata)
        raw_chapters = container.chapters()
        container_bit_rate = int(container.bit_rate or 0)
        codec_bit_rate = int(ctx.bit_rate or 0)
        hasher = AudioHasher()
        if declared is not None:
            hasher.feed_from(container, stream)  # before check_tail seeks away from the start
        samples = declared if declared is not None else _count_by_demuxing(container, stream, rate, hasher)
        content = hasher.hexdigest(codec, rate, channels, samples)
        # A file shown complete by its byte count is not decoded at its end: that check only finds
        # headers that count more audio than the file holds.
        problem = check_tail(path, container, stream, samples, rate) if samples > 0 and not complete else None
    except av.FFmpegError as exc:
        raise ProbeError(f"cannot read audio: {exc.strerror or exc}") from exc
    finally:
        container.close()
    if samples <= 0:
        raise ProbeError("no audio samples")
    if problem is not None:
        raise ProbeError(problem)
    try:
        tags, parsed = read_tags_parsed(path, metadata, artist_separators, fmt.split(",")[0], codec)
    except TagError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        embedded_art, art_read = embedded_art_id(parsed), True
    except Exception:  # art never fails a probe: the art index reads the file again
        embedded_art, art_read = None, False
    seconds = samples / rate
    bit_rate = codec_bit_rate or container_bit_rate or int(stat.st_size * 8 / seconds)
    media = MediaFile(
        path=str(path),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        container=fmt,
        codec=codec,
        sample_rate=rate,
        channels=channels,
        bit_rate=bit_rate,
        sample_count=samples,
    )
    duration_ms = samples * 1000 // rate
    return Probe(media, tags, chapters_from_container(raw_chapters, duration_ms), content,
                 embedded_art, art_read)


def file_content(path: Path) -> str | None:
    """The content fingerprint of ``path`` alone, as ``probe_file`` computes it (for files probed
    before fingerprints were kept); None when the file cannot be read or counted the same way."""
    try:
        probe = probe_file(path)
    except ProbeError:
        return None
    return probe.content
