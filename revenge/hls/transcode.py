"""Encode the segments of one (item, profile) with PyAV: a pure function of the source files.

Segments are encoded in *runs* of ``run_segments`` consecutive segments (the first at a multiple of
it), one encoder per run (:class:`SegmentRun`): a segment's bytes are what its run produces, however
and whenever it is asked for. Pipeline for a run (all positions in samples at the output rate):

1. The plan gives each segment's media range ``[media_start, media_end)``. The encoder is started a
   few frames before the run's first segment (on the frame grid: ``preroll`` frames plus its own
   delay) and fed past each segment's end as far as its last packet needs (the encoder's delay: one
   frame of real look-ahead for AAC; frame by frame up to ``postroll`` more, then a flush, for an
   encoder that holds packets back longer), so the packets we keep were produced with warm MDCT
   overlap and psychoacoustic state, like a continuous encode's: no click at run boundaries, and
   none inside a run, which is one continuous encode. Segment 0 starts at sample 0, exactly as a
   continuous encode does.
2. :func:`read_timeline` decodes that span from the item's files (one timeline for a multi-file
   book): each file is sought close to the span with a decoder pre-roll, placed by its frames'
   timestamps, trimmed to exactly ``MediaFile.sample_count`` (end padding dropped, missing samples
   are silence), converted to the output layout and, when the rate differs, resampled from an input
   position on the resampling grid so the output is sample-identical to resampling the whole file.
3. Packets whose media time lies in ``[media_start, media_end)`` are kept; FLAC frames are
   renumbered to their global index; :func:`fmp4.media_segment` wraps them.

Encoder delay ("priming") is handled once, at the start of the timeline, per codec:

* Opus: the priming packet is kept and announced by ``dOps`` PreSkip (plus the edit list the Opus
  mapping asks for); every decoder we know honours PreSkip, so the output is exact.
* AAC: the priming packet is *dropped*: the media timeline starts at the packet that decodes to
  source sample 0. An edit list would be the textbook answer, but FFmpeg up to 5.x ignores edit
  lists in fragmented MP4 (and so would play 1024 extra samples); without the priming packet every
  decoder outputs exactly the source's samples plus < 1 frame of end padding (which the edit
  list's duration lets compliant players drop). The price: the first 23 ms are decoded without
  their overlap partner (a fade-in), which is silent for the usual track that starts in silence.
* FLAC has no delay.

Everything here runs in the engine's encode threads (PyAV releases the GIL while coding).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd

import av
import numpy as np

from revenge.hls import flac_frames, fmp4
from revenge.hls.plan import Segment, SegmentPlan, converted_count, plan_segments
from revenge.hls.profiles import OutputFormat, Profile, output_format
from revenge.hls.seek_index import FileWindow, SeekIndexes, SeekPoint
from revenge.library.model import Item, MediaFile, is_lossless_codec

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


@dataclass(frozen=True, slots=True)
class Rendition:
    """One item in one profile: the output format, its exact plan and its init segment."""

    item_id: str
    fingerprint: str
    files: tuple[MediaFile, ...]
    format: OutputFormat
    file_counts: tuple[int, ...]  # each file's samples at the output rate
    plan: SegmentPlan
    encoder_delay: int  # samples: the encoder's first packet has pts -encoder_delay
    priming: int  # media samples before presentation sample 0 (Opus pre-skip; 0 for AAC, FLAC)
    codec_config: bytes
    aac_coder: str
    # Segments encoded by one encoder fed continuously (see SegmentRun); 1 = each on its own.
    run_segments: int = 1
    # Exact seek points for long MP3 files, shared by the engine's renditions (None: FFmpeg seeks).
    seek_indexes: SeekIndexes | None = field(default=None, compare=False, repr=False)

    @property
    def profile(self) -> Profile:
        return self.format.profile

    def init_segment(self) -> bytes:
        return fmp4.init_segment(self.track_info())

    def track_info(self) -> fmp4.TrackInfo:
        codec = {"aac": "aac", "libopus": "opus", "flac": "flac"}[self.profile.encoder]
        return fmp4.TrackInfo(
            codec=codec, sample_rate=self.format.sample_rate, channels=self.format.channels,
            bits_per_sample=self.format.bits_per_sample, frame_size=self.format.frame_size,
            priming=self.priming, total=self.plan.total, bit_rate=self.format.bit_rate,
            codec_config=self.codec_config,
        )


# --------------------------------------------------------------------------- encoder

def _encoder_sample_format(fmt: OutputFormat) -> str:
    if fmt.profile.encoder == "aac":
        return "fltp"
    if fmt.profile.encoder == "libopus":
        return "flt"
    return "s32" if fmt.bits_per_sample > 16 else "s16"


def work_format(fmt: OutputFormat) -> str:
    """Planar format the decoded audio is held in: float for the lossy codecs, integers for FLAC
    so lossless stays bit-exact."""
    if fmt.profile.lossless:
        return "s32p" if fmt.bits_per_sample > 16 else "s16p"
    return "fltp"


def open_encoder(fmt: OutputFormat, aac_coder: str) -> av.AudioCodecContext:
    ctx = av.CodecContext.create(fmt.profile.encoder, "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = fmt.sample_rate
    ctx.layout = fmt.layout
    ctx.format = _encoder_sample_format(fmt)
    ctx.time_base = Fraction(1, fmt.sample_rate)
    options: dict[str, str] = {}
    if fmt.bit_rate:
        ctx.bit_rate = fmt.bit_rate
    if fmt.profile.encoder == "aac":
        options["aac_coder"] = aac_coder
    elif fmt.profile.encoder == "flac":
        options["frame_size"] = str(fmt.frame_size)
        if fmt.bits_per_sample > 16:
            options["bits_per_raw_sample"] = "24"
    elif fmt.profile.encoder == "libopus":
        options["frame_duration"] = str(1000 * fmt.frame_size // 48000)
        options["vbr"] = "constrained"  # stays near the nominal rate: BANDWIDTH and ABR stay meaningful
    ctx.options = options
    ctx.open()
    if ctx.frame_size != fmt.frame_size:
        raise RuntimeError(f"{fmt.profile.encoder} frame size {ctx.frame_size}, expected {fmt.frame_size}")
    return ctx


def encoder_setup(fmt: OutputFormat, aac_coder: str) -> tuple[int, bytes]:
    """(delay, codec config) of the encoder: the delay measured as minus the first packet's pts."""
    ctx = open_encoder(fmt, aac_coder)
    config = bytes(ctx.extradata or b"")
    frame = _make_frame(np.zeros((fmt.channels, fmt.frame_size), dtype=_numpy_dtype(fmt)), fmt, 0)
    packets = [*ctx.encode(frame), *ctx.encode(None)]
    if not packets or packets[0].pts is None:
        raise RuntimeError(f"{fmt.profile.encoder} produced no timed packet")
    delay = -int(packets[0].pts)
    if delay < 0:
        raise RuntimeError(f"{fmt.profile.encoder} first packet pts {packets[0].pts} > 0")
    return delay, config


def timeline_priming(fmt: OutputFormat, encoder_delay: int) -> int:
    """Media samples presented before source sample 0 (see the module docstring)."""
    return encoder_delay if fmt.profile.encoder == "libopus" else 0


def _numpy_dtype(fmt: OutputFormat) -> type[np.generic]:
    work = work_format(fmt)
    return {"fltp": np.float32, "s16p": np.int16, "s32p": np.int32}[work]


def _make_frame(block: np.ndarray, fmt: OutputFormat, pts: int) -> av.AudioFrame:
    """An encoder input frame from planar ``block`` (channels, n)."""
    encoder_format = _encoder_sample_format(fmt)
    if encoder_format == "fltp":
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=fmt.layout)
    else:  # packed formats: interleave
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T).reshape(1, -1),
                                           format=encoder_format, layout=fmt.layout)
    frame.sample_rate = fmt.sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, fmt.sample_rate)
    return frame


# --------------------------------------------------------------------------- rendition

def source_bits(media: MediaFile) -> int:
    """16 or 24: the sample size a lossless source's decoder gives (for the FLAC profile)."""
    try:
        with av.open(media.path) as container:
            ctx = container.streams.audio[0].codec_context
            if ctx.format is None:
                raise SourceError(f"{media.path}: no decodable audio")
            bits = ctx.bits_per_raw_sample if hasattr(ctx, "bits_per_raw_sample") else 0
            return 24 if (bits or 8 * ctx.format.bytes) > 16 else 16
    except FileNotFoundError as exc:
        raise SourceMissing(f"source file missing: {exc.filename}") from exc
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise SourceError(f"cannot open source: {exc}") from exc


def prepare_rendition(item: Item, profile: Profile, segment_seconds: float, aac_coder: str,
                      run_segments: int = 1) -> Rendition:
    """Output format, exact plan and encoder configuration of ``item`` in ``profile`` (cheap: opens
    one encoder, and for FLAC one source file to read its sample size)."""
    first = item.files[0]
    bits = source_bits(first) if profile.lossless else 16
    fmt = output_format(profile, first.sample_rate, first.channels, bits)
    counts = tuple(converted_count(f.sample_count, f.sample_rate, fmt.sample_rate) for f in item.files)
    if sum(counts) <= 0:
        raise SourceError("the item has no audio samples")
    delay, config = encoder_setup(fmt, aac_coder)
    priming = timeline_priming(fmt, delay)
    if (delay - priming) % fmt.frame_size:
        raise RuntimeError(f"{profile.encoder}: delay {delay} does not keep packets on the frame grid")
    plan = plan_segments(sum(counts), fmt.sample_rate, fmt.frame_size, priming, segment_seconds)
    if run_segments < 1:
        raise ValueError("run_segments must be at least 1")
    return Rendition(item.id, item.fingerprint, item.files, fmt, counts, plan, delay, priming, config,
                     aac_coder, run_segments)


# --------------------------------------------------------------------------- decoding

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
    source = FileWindow(media.path, point.offset) if point is not None else media.path
    with av.open(source, format="mp3" if point is not None else None) as container:
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


def read_timeline(rendition: Rendition, start: int, stop: int) -> np.ndarray:
    """Presentation samples ``[start, stop)`` of the item (all files, one timeline) in the output
    format: planar (channels, stop - start)."""
    fmt = rendition.format
    out = np.zeros((fmt.channels, stop - start), dtype=_numpy_dtype(fmt))
    offset = 0
    for media, count in zip(rendition.files, rendition.file_counts, strict=True):
        lo, hi = max(start, offset), min(stop, offset + count)
        if hi > lo:
            out[:, lo - start : hi - start] = read_file_at(media, lo - offset, hi - offset, fmt, count,
                                                           rendition.seek_indexes)
        offset += count
        if offset >= stop:
            break
    return out


# --------------------------------------------------------------------------- one segment

class SegmentRun:
    """One encoder fed continuously over a *run*: ``rendition.run_segments`` consecutive segments
    starting at a multiple of it. Each segment's bytes are defined as what this run produces, so
    they are the same whenever and in whatever order they are asked for: a fresh run advanced to
    segment *n* gives what a run kept from an earlier request gives.

    Why runs: a fresh AAC encoder is ~1.5x slower over its first few hundred frames (its rate
    control and bit reservoir settle), which a 6-second segment never leaves. Continuing the encoder
    of the previous segment pays that once per run instead of once per segment; a seek into the
    middle of a run pays for the run's earlier segments instead. With ``run_segments = 1`` every
    segment has its own encoder (constant cost, the pre-roll/post-roll scheme of the module docstring).

    Not thread-safe: one thread advances a run at a time (the engine serialises a run's jobs).
    """

    def __init__(self, rendition: Rendition, index: int) -> None:
        plan, fmt, profile = rendition.plan, rendition.format, rendition.profile
        if not 0 <= index < plan.count:
            raise IndexError(index)
        self.rendition = rendition
        self.first = index - index % rendition.run_segments
        self.last = min(plan.count, self.first + rendition.run_segments) - 1
        frame = fmt.frame_size
        self._shift = rendition.encoder_delay - rendition.priming  # feed position − packet media time
        # The encoder starts ``preroll`` real frames (plus its own delay) before the run's first
        # kept packet, on the frame grid (delay − priming is a whole number of frames) ...
        lead = (profile.preroll_frames + -(-rendition.encoder_delay // frame)) * frame
        self.fed = max(0, plan.segment(self.first).media_start + self._shift - lead)
        # ... and may be fed up to ``postroll`` frames past the last one (then flushed) when the
        # encoder holds the run's last packets back beyond its delay.
        self._stop = min(plan.total, plan.segment(self.last).media_end + self._shift
                         + profile.postroll_frames * frame)
        # Packets kept: those of the run's segments (not the pre-roll's, not the post-roll's).
        self._keep = (plan.segment(self.first).media_start, plan.segment(self.last).media_end)
        self._ctx = open_encoder(fmt, rendition.aac_coder)
        self._flushed = False
        self._packets: list[tuple[int, bytes]] = []  # (media position, data) not yet handed out
        self.next_index = self.first

    @property
    def done(self) -> bool:
        return self.next_index > self.last

    def advance(self, index: int) -> dict[int, bytes]:
        """Encode on to segment ``index`` (``next_index <= index <= last``): ``moof`` + ``mdat`` of
        every segment completed on the way, by index."""
        if not self.next_index <= index <= self.last:
            raise ValueError(f"segment {index} is not ahead in run {self.first}..{self.last} "
                             f"(next {self.next_index})")
        out: dict[int, bytes] = {}
        while self.next_index <= index:
            segment = self.rendition.plan.segment(self.next_index)
            # The packet of the frame fed at position p comes out once p + frame is fed: the input
            # needed for a segment ends at its media end + the shift (more only near the run's end).
            self._feed_until(min(self._stop, segment.media_end + self._shift))
            while not self._complete(segment):
                if not self._feed_until(min(self._stop, self.fed + self.rendition.format.frame_size)):
                    self._flush()
                    break
            out[segment.index] = self._take(segment)
            self.next_index += 1
        return out

    def _complete(self, segment: Segment) -> bool:
        last_packet = segment.media_end - self.rendition.format.frame_size
        return bool(self._packets) and self._packets[-1][0] >= last_packet

    def _feed_until(self, stop: int) -> bool:
        """Feed the timeline up to ``stop``; False when there is nothing left to feed."""
        if stop <= self.fed:
            return False
        fmt = self.rendition.format
        pcm = read_timeline(self.rendition, self.fed, stop)
        for offset in range(0, pcm.shape[1], fmt.frame_size):
            block = pcm[:, offset : offset + fmt.frame_size]
            self._collect(self._ctx.encode(_make_frame(block, fmt, self.fed + offset)))
        self.fed = stop
        return True

    def _flush(self) -> None:
        if not self._flushed:
            self._flushed = True
            self._collect(self._ctx.encode(None))

    def _collect(self, packets: Sequence[av.Packet]) -> None:
        start, end = self._keep
        for packet in packets:
            if packet.size == 0:
                continue  # FLAC's flush packet: only a STREAMINFO update as side data
            if packet.pts is None:
                raise RuntimeError("encoder produced a packet without pts")
            media = int(packet.pts) + self.rendition.priming
            if start <= media < end:
                self._packets.append((media, bytes(packet)))

    def _take(self, segment: Segment) -> bytes:
        frame = self.rendition.format.frame_size
        kept = [(m, d) for m, d in self._packets if m < segment.media_end]
        self._packets = self._packets[len(kept):]
        positions = [m for m, _ in kept]
        if positions != list(range(segment.media_start, segment.media_end, frame)):
            raise RuntimeError(f"segment {segment.index}: encoder gave {len(kept)} packets at "
                               f"{positions[:3]}…, expected {self.rendition.plan.frames_in(segment)} "
                               f"from {segment.media_start}")
        if self.rendition.profile.encoder == "flac":
            packets = [flac_frames.renumber(data, media // frame) for media, data in kept]
        else:
            packets = [data for _, data in kept]
        return fmp4.media_segment(segment.index + 1, segment.media_start, frame, packets)


def encode_segment(rendition: Rendition, index: int) -> bytes:
    """``moof`` + ``mdat`` of segment ``index``: a fresh run advanced to it. Byte-identical whenever
    and in whatever order it is asked for."""
    return SegmentRun(rendition, index).advance(index)[index]
