"""Probe one audio file with PyAV: format, codec, exact sample count, tags and embedded chapters.

The sample count is the one thing that must be exact (the HLS planner builds its segment grid on it),
so it is taken from where the container *declares* it exactly, and counted from packets (demuxed,
never decoded) where it does not:

- FLAC: STREAMINFO total samples (``stream.duration`` in 1/rate).
- MP3: the Xing/Info/VBRI frame count, with the LAME encoder delay and padding removed (FFmpeg's mp3
  demuxer turns these into ``stream.duration``). Without such a header FFmpeg only *estimates* the
  duration from the bit rate, so those files are counted by packets (1152 samples per frame); so
  are files shorter than the byte count their header declares (cut short). An MP3 as LAME and FFmpeg
  write it (Info/Xing header with frame and byte counts and a gapless tag, ID3v2 tags, no chapters)
  is read from its bytes instead, to the same result without opening the demuxer (``probe_mp3``).
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

import struct
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

from revenge.library.model import MediaFile
from revenge.library.mp3_frames import frame_header, mp3_declared_totals
from revenge.library.probe_model import (
    AudioHasher,
    EmbeddedChapter,
    FileHead,
    Probe,
    ProbeError,
    read_head,
    tags_and_art,
)
from revenge.library.probe_mp3 import mp3_by_frames
from revenge.library.tags import MAX_TAG_LENGTH, Tags, loose_fields, tags_from_fields
from revenge.library.verify import check_tail, mp3_appended_bytes

__all__ = ["EmbeddedChapter", "Probe", "ProbeError", "chapters_from_container", "demuxer_for", "file_content",
           "probe_file"]  # Probe, ProbeError and EmbeddedChapter are imported from here too

# Formats (FFmpeg demuxer names, first of the comma list) whose stream.duration is the exact count.
_DECLARED_EXACT = frozenset({"flac", "mov", "wav", "w64", "aiff", "wv", "caf", "tta", "ape", "ogg"})


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


def demuxer_for(head: FileHead) -> str | None:
    """The FFmpeg demuxer a file's magic bytes name without doubt, else None (then FFmpeg probes).
    Named, FFmpeg skips probing every demuxer against the file's head, which for an MP3 with a large
    ID3 tag (a cover) costs more than the rest of opening it."""
    start = head.start
    if frame_header(head.after_tag, 0) is not None:
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


def probe_file(path: Path, artist_separators: Sequence[str] = (), *, by_frames: bool = True) -> Probe:
    """Probe ``path`` (a file the scanner found). Raises ProbeError with a readable reason.
    ``by_frames``: read the MP3s ``mp3_by_frames`` can read that way (False: every file through
    FFmpeg's demuxer, to compare the two)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ProbeError(f"cannot stat: {exc.strerror or exc}") from exc
    try:
        head = read_head(path)
        demuxer = demuxer_for(head)
        fast = mp3_by_frames(path, head, stat, artist_separators) if by_frames and demuxer == "mp3" else None
        if fast is not None:
            return fast
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
    tags, _, embedded_art, art_read = tags_and_art(path, metadata, artist_separators, fmt.split(",")[0],
                                                    codec)
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
