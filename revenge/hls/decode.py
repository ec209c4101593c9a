"""Decoding a span of an item's timeline: the source files' samples, exact, in the output format.

:func:`read_timeline` gives presentation samples ``[start, stop)`` of an item (one timeline for a
multi-file book) at the output rate and layout. Each file is sought close to the span with a
decoder pre-roll, placed by its frames' timestamps, trimmed to exactly ``MediaFile.sample_count``
(end padding dropped, missing samples are silence), converted to the output layout and, when the
rate differs, resampled from an input position on the resampling grid so the output is
sample-identical to resampling the whole file. Long MP3 files seek from exact recorded frame
positions (:mod:`revenge.hls.seek_index`) when the caller passes the engine's seek indexes.

Runs in the engine's encode threads (PyAV releases the GIL while decoding).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from math import gcd
from typing import Protocol

import av
import numpy as np

from revenge.errors import raise_if_out_of_descriptors
from revenge.hls.profiles import OutputFormat
from revenge.hls.seek_index import FileWindow, SeekIndexes, SeekPoint
from revenge.library.model import MediaFile, is_lossless_codec

log = logging.getLogger("revenge.hls")

# Decoded samples thrown away before the first needed one after a seek: lossy decoders need the
# previous frames (AAC MDCT overlap, MP3 bit reservoir; Opus converges bit-exactly after ~200 ms).
_DECODER_PREROLL = {"aac": 2048, "mp3": 4608, "mp3float": 4608, "opus": 11520, "vorbis": 4096}
_DEFAULT_LOSSY_PREROLL = 8192
# Output samples resampled before the first needed one: swr's start transient is < 100 samples.
_RESAMPLER_WARMUP = 512


class SourceError(Exception):
    """The source cannot be decoded (corrupt, truncated beyond use, unsupported)."""


class SourceMissing(SourceError):
    """A source file is gone (moved or deleted since the scan)."""


class Timeline(Protocol):
    """What decoding needs of an item in one output format (a :class:`~revenge.hls.rendition.Rendition`)."""

    @property
    def files(self) -> tuple[MediaFile, ...]: ...

    @property
    def file_counts(self) -> tuple[int, ...]:
        """Each file's samples at the output rate."""

    @property
    def format(self) -> OutputFormat: ...


def work_format(fmt: OutputFormat) -> str:
    """Planar format the decoded audio is held in: float for the lossy codecs, integers for FLAC
    so lossless stays bit-exact."""
    if fmt.profile.lossless:
        return "s32p" if fmt.bits_per_sample > 16 else "s16p"
    return "fltp"


def sample_dtype(fmt: OutputFormat) -> type[np.generic]:
    """The numpy type of :func:`work_format`'s samples."""
    return {"fltp": np.float32, "s16p": np.int16, "s32p": np.int32}[work_format(fmt)]


def _decoder_preroll(codec_name: str, lossless: bool) -> int:
    if lossless:
        return 0
    return _DECODER_PREROLL.get(codec_name, _DEFAULT_LOSSY_PREROLL)


def _frames_from(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame]:
    for packet in container.demux(stream):
        yield from packet.decode()


def _decode_into(media: MediaFile, start: int, stop: int, work: str, layout: str, *,
                 seek: bool, point: SeekPoint | None = None) -> np.ndarray | None:
    """Samples ``[start, stop)`` of ``media`` at its own rate, planar ``work`` format in ``layout``.

    With ``point``, demuxing starts at that MP3 frame (through a window on the file) and positions
    count from its sample. Returns None when ``seek`` was asked but the demuxer landed after
    ``start`` (the caller then retries from the beginning of the file).
    """
    channels = len(av.AudioLayout(layout).channels)
    dtype = {"fltp": np.float32, "s16p": np.int16, "s32p": np.int32}[work]
    out = np.zeros((channels, stop - start), dtype=dtype)
    # PyAV never closes a file object it reads from: the window is closed here, on every way out.
    window = FileWindow(media.path, point.offset) if point is not None else None
    source: str | FileWindow = media.path if window is None else window
    with contextlib.closing(window) if window is not None else contextlib.nullcontext(), \
            av.open(source, format=None if window is None else "mp3") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        if rate != media.sample_rate:
            raise SourceError(f"{media.path}: rate {rate} Hz, catalog says {media.sample_rate} Hz")
        time_base = stream.time_base
        assert time_base is not None
        # The exact timeline starts at the first sample the decoder outputs: for MP3 with a LAME
        # header FFmpeg gives that sample the pts of start_time (encoder + decoder delay). In a
        # window, the first frame is the seek point's.
        origin = -point.sample if point is not None else round((stream.start_time or 0) * time_base * rate)
        lossless = is_lossless_codec(stream.codec_context.name)
        target = start - _decoder_preroll(stream.codec_context.name, lossless)
        seeking = seek and target > 0 and point is None
        if seeking:
            try:
                container.seek(int((origin + target) / (time_base * rate)), stream=stream, backward=True)
            except av.FFmpegError:
                # FFmpeg's FLAC seek without a SEEKTABLE can refuse ("Operation not permitted") near
                # the end of a file: like an inexact seek, the caller decodes from the start.
                return None
        converter = av.AudioResampler(format=work, layout=layout, rate=rate)
        position: int | None = None
        for frame in _frames_from(container, stream):
            if frame.pts is not None and frame.time_base is not None:
                position = round(frame.pts * frame.time_base * rate) - origin
            elif position is None:
                raise SourceError(f"{media.path}: decoded frame without timestamp")
            if seeking and position > start:
                return None  # landed past what we need: inexact seek for this file
            seeking = False
            n = frame.samples
            frame.pts = None  # the converter only changes format/layout; we place samples ourselves
            for converted in converter.resample(frame):
                _place(out, converted.to_ndarray(), position, start, min(stop, media.sample_count))
            position += n
            if position >= stop:
                break
    return out


def _place(out: np.ndarray, data: np.ndarray, position: int, start: int, limit: int) -> None:
    """Copy ``data`` (which starts at ``position``) into ``out`` (which starts at ``start``),
    clipped to ``[start, limit)``."""
    lo = max(position, start)
    hi = min(position + data.shape[1], limit, start + out.shape[1])
    if hi > lo:
        out[:, lo - start : hi - start] = data[:, lo - position : hi - position]


def decode_file(media: MediaFile, start: int, stop: int, work: str, layout: str,
                indexes: SeekIndexes | None = None) -> np.ndarray:
    """Samples ``[start, stop)`` of one file at its own rate; exact whatever the format."""
    try:
        point = None
        if indexes is not None:
            point = indexes.point_for(media, start - _decoder_preroll(media.codec, False))
        data = _decode_into(media, start, stop, work, layout, seek=True, point=point)
        if data is None:
            log.warning("inexact seek in %s; decoding from the start", media.path)
            data = _decode_into(media, start, stop, work, layout, seek=False)
        assert data is not None
        return data
    except FileNotFoundError as exc:
        raise SourceMissing(f"source file missing: {exc.filename}") from exc
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise_if_out_of_descriptors(exc)
        raise SourceError(f"cannot decode {media.path}: {exc}") from exc


def _resample(data: np.ndarray, work: str, layout: str, rate_in: int, rate_out: int) -> np.ndarray:
    resampler = av.AudioResampler(format=work, layout=layout, rate=rate_out)
    chunks: list[np.ndarray] = []
    block = 8192
    for offset in range(0, data.shape[1], block):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, offset : offset + block]),
                                           format=work, layout=layout)
        frame.sample_rate = rate_in
        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    if not chunks:
        return np.zeros((data.shape[0], 0), dtype=data.dtype)
    return np.concatenate(chunks, axis=1)


def read_file_at(media: MediaFile, start: int, stop: int, fmt: OutputFormat, count: int,
                 indexes: SeekIndexes | None = None) -> np.ndarray:
    """Samples ``[start, stop)`` of one file on the output timeline (output rate, layout, work
    format); the file has exactly ``count`` samples there."""
    work, layout = work_format(fmt), fmt.layout
    rate_in, rate_out = media.sample_rate, fmt.sample_rate
    if rate_in == rate_out:
        return decode_file(media, start, stop, work, layout, indexes)
    # Resample from a point where input and output samples coincide (a multiple of
    # rate_in/g input samples): the output is then sample-identical to resampling the whole file.
    g = gcd(rate_in, rate_out)
    step_out = rate_out // g
    warm_start = max(0, (start - _RESAMPLER_WARMUP) // step_out * step_out)
    in_start = warm_start * rate_in // rate_out
    margin = 1024 * max(1, -(-rate_in // rate_out))
    in_stop = min(media.sample_count, -(-stop * rate_in // rate_out) + margin)
    data = decode_file(media, in_start, in_stop, work, layout, indexes)
    resampled = _resample(data, work, layout, rate_in, rate_out)
    out = np.zeros((resampled.shape[0], stop - start), dtype=resampled.dtype)
    # Past the file's exact converted count there is nothing (the resampler's flush may overshoot).
    _place(out, resampled, warm_start, start, min(stop, count))
    return out


def read_timeline(timeline: Timeline, start: int, stop: int,
                  indexes: SeekIndexes | None = None) -> np.ndarray:
    """Presentation samples ``[start, stop)`` of the item (all files, one timeline) in the output
    format: planar (channels, stop - start). ``indexes``: exact seek points for long MP3 files
    (None: FFmpeg seeks, slower deep into a long MP3; the samples are the same)."""
    fmt = timeline.format
    out = np.zeros((fmt.channels, stop - start), dtype=sample_dtype(fmt))
    offset = 0
    for media, count in zip(timeline.files, timeline.file_counts, strict=True):
        lo, hi = max(start, offset), min(stop, offset + count)
        if hi > lo:
            out[:, lo - start : hi - start] = read_file_at(media, lo - offset, hi - offset, fmt, count,
                                                           indexes)
        offset += count
        if offset >= stop:
            break
    return out
