"""A progressive transcode: an item's files decoded in order from an offset and encoded into one plain
stream (MP3, Ogg Opus, AAC in ADTS), handed out a chunk at a time so the first bytes leave after the
first encoded frames, not after the whole file. Blocking: each ``next_chunk`` runs in the encode pool
(``HlsEngine.run_encode``), so transcoded streams share the workers and back-pressure of HLS.

The encoder is fed exactly the item's samples from the offset on (:func:`output_samples`), so the
stream is gapless where the format can say so: MP3 starts with an Info frame whose LAME tag carries
the encoder delay and end padding (:mod:`revenge.hls.lametag`; its length is then known before the
first byte, ``content_length``), Ogg carries Opus' pre-skip in its OpusHead and the exact end in the
last page's granule position. ADTS cannot say: an AAC stream starts with the encoder's priming.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from revenge.hls.lametag import gapless, info_frame
from revenge.hls.plan import converted_count
from revenge.library.model import Item, MediaFile

# Audio per chunk: the first one short, for a quick first byte; the others long, so the per-chunk
# costs (a trip through the encode pool, a progress report, a write) are spread over more audio.
FIRST_CHUNK_SECONDS = 0.25
CHUNK_SECONDS = 4.0
OGG_PAGE_US = 1_000_000  # an Ogg page a second (FFmpeg's default, set: length_bound counts on it)


@dataclass(frozen=True, slots=True)
class StreamFormat:
    name: str  # as clients ask for it (``format=``)
    encoder: str
    container: str
    media_type: str
    suffix: str
    default_kbps: int
    rates: tuple[int, ...]  # sample rates the encoder takes, preferred first


FORMATS: dict[str, StreamFormat] = {
    "mp3": StreamFormat("mp3", "libmp3lame", "mp3", "audio/mpeg", "mp3", 192, (44100, 48000, 32000)),
    "opus": StreamFormat("opus", "libopus", "ogg", "audio/ogg", "opus", 128, (48000,)),
    "aac": StreamFormat("aac", "aac", "adts", "audio/aac", "aac", 192, (44100, 48000)),
}
BITRATES_KBPS = (32, 48, 64, 96, 128, 160, 192, 256, 320)


def choose_format(requested: str | None, max_kbps: int) -> tuple[StreamFormat, int] | None:
    """The format and bit rate (kb/s) of a transcode for ``format=`` and ``maxBitRate=`` (0: no limit);
    None when the request asks for none we make. Pure."""
    fmt = FORMATS.get((requested or "mp3").lower())
    if fmt is None:
        return None
    if max_kbps <= 0:
        return fmt, fmt.default_kbps
    return fmt, min(fmt.default_kbps, max(b for b in BITRATES_KBPS if b <= max(max_kbps, 32)))


class _Sink:
    """A write-only file for the muxer: what it wrote since the last ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class ProgressiveTranscode:
    """One item from ``offset_seconds`` on, as exactly ``samples`` samples at ``rate``: the decode
    is trimmed to each file's catalogued sample count, and the encoder is fed that total, no more
    (the stream ends short of it only if the sources do, and then silence fills it up to it), so a
    decoder that honours the stream's delay and padding (MP3: the LAME tag this stream starts with;
    Opus: pre-skip and the last granule position) gives back exactly that many samples."""

    def __init__(self, item: Item, fmt: StreamFormat, kbps: int, offset_seconds: float = 0.0,
                 known_length: bool = False) -> None:
        """``known_length``: the length is announced ahead (``estimateContentLength``), so Opus is
        encoded at a hard constant rate, which keeps it under :func:`length_bound`."""
        self.item = item
        self.format = fmt
        source_rate = item.sample_rate
        self.rate = rate = source_rate if source_rate in fmt.rates else fmt.rates[0]
        layout = "mono" if item.channels == 1 else "stereo"
        self.samples = output_samples(item, rate, offset_seconds)
        self._sink = _Sink()
        # No ID3v2 tag from the MP3 muxer: the Info frame must be the stream's first bytes.
        options = {"id3v2_version": "0", "write_xing": "0"} if fmt.container == "mp3" else {}
        if fmt.container == "ogg":
            options["page_duration"] = str(OGG_PAGE_US)
        self._out = av.open(self._sink, "w", format=fmt.container, options=options)
        # Opus: constrained VBR as HLS has (plain VBR goes 50 % over maxBitRate on tonal music).
        codec_options = {"vbr": "off" if known_length else "constrained"} if fmt.encoder == "libopus" else {}
        self._stream = self._out.add_stream(fmt.encoder, rate=rate, layout=layout,  # type: ignore[call-overload]
                                            options=codec_options)
        self._stream.bit_rate = kbps * 1000
        codec = self._stream.codec_context
        self._resampler = av.AudioResampler(format=codec.format.name, layout=layout, rate=rate,
                                            frame_size=codec.frame_size or None)
        self._frame_size = codec.frame_size or 1024
        self._frames = self._decoded(offset_seconds)
        self._done = False
        self._fed = 0  # samples given to the encoder
        self.sent_ms = 0  # audio handed out by next_chunk so far
        # MP3: an Info frame with the LAME tag first; the stream's length is then known exactly.
        channels = 1 if layout == "mono" else 2
        self._head = info_frame(self.samples, kbps, rate, channels) if fmt.name == "mp3" else b""
        self.content_length = (len(self._head) + gapless(self.samples, kbps, rate).audio_bytes
                               if fmt.name == "mp3" else None)
        self.length_bound = (self.content_length if self.content_length is not None
                             else length_bound(fmt, kbps, self.samples, rate))

    def _decoded(self, offset: float) -> Iterator[av.AudioFrame]:
        """The items' decoded frames from ``offset`` seconds on, each file cut to its catalogued
        sample count (what FFmpeg's decoder yields after gapless trimming: the count is exact)."""
        for media in self.item.files:
            if offset >= media.duration_seconds:
                offset -= media.duration_seconds
                continue
            yield from _file_frames(media, round(offset * media.sample_rate))
            offset = 0.0

    def next_chunk(self) -> bytes:
        """The next encoded bytes (b"" once the stream has ended and been flushed)."""
        if self._done:
            return b""
        seconds = CHUNK_SECONDS if self._fed else FIRST_CHUNK_SECONDS
        wanted = min(self.samples, self._fed + int(seconds * self.rate))
        ended = True
        if self._fed < self.samples:
            for frame in self._frames:
                for converted in self._resampler.resample(frame):
                    self._encode(converted)
                if self._fed >= wanted:
                    ended = self._fed >= self.samples
                    break
        if ended:
            for converted in self._resampler.resample(None):
                self._encode(converted)
            while self._fed < self.samples:  # the sources ran short of the catalog: silence
                self._encode(_silence(self._stream.codec_context,
                                      min(self._frame_size, self.samples - self._fed)))
            self._out.mux(self._stream.encode(None))
            self.close()
        self.sent_ms = self._fed * 1000 // self.rate
        head, self._head = self._head, b""
        return head + self._sink.take()

    def _encode(self, frame: av.AudioFrame) -> None:
        room = self.samples - self._fed
        if room <= 0:
            return
        if frame.samples > room:  # past the exact count (resampler flush, a decoder's extra)
            frame = _slice(frame, 0, room)
        frame.pts = self._fed
        frame.time_base = Fraction(1, self.rate)
        self._fed += frame.samples
        self._out.mux(self._stream.encode(frame))

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._out.close()


def length_bound(fmt: StreamFormat, kbps: int, samples: int, rate: int) -> int:
    """Bytes a stream of ``samples`` samples will not exceed: announced as its length, the stream
    then padded with zeros to it (Ogg and ADTS demuxers skip trailing zeros). Pure.

    Opus at a hard constant rate has packets of exactly ``kbps * 20 / 8`` bytes, one per 960
    samples plus the pre-skip (< 960); Ogg adds 27 bytes a page (a page a second: bounded by two)
    and a lacing byte per 255 bytes of a packet; the two header pages stay under 1 KiB. AAC has no
    constant rate: FFmpeg's encoder was measured up to 14 % over its target (a 32 kb/s stereo sine),
    so 25 % is allowed, plus the ADTS header and the priming and flushed frames; a stream that would
    pass it anyway is cut there (``transcoded``). MP3 needs none: its length is exact."""
    if fmt.encoder == "libopus":
        packets = -(-samples // 960) + 2
        packet = kbps * 20 // 8
        pages = packets // 25 + 4
        return 1024 + packets * (packet + packet // 255 + 1) + pages * 27
    frames = -(-samples // 1024) + 3
    return 1024 + frames * (7 + -(-kbps * 1000 * 1024 * 5 // (rate * 8 * 4)))


def output_samples(item: Item, rate: int, offset_seconds: float) -> int:
    """Samples a stream of ``item`` at ``rate`` from ``offset_seconds`` on carries. Pure."""
    total = sum(converted_count(f.sample_count, f.sample_rate, rate) for f in item.files)
    return max(0, total - round(offset_seconds * rate))


def _file_frames(media: MediaFile, start: int) -> Iterator[av.AudioFrame]:
    """Frames of one file's samples ``[start, sample_count)`` (placed by their timestamps)."""
    with av.open(media.path) as source:
        stream = source.streams.audio[0]
        rate = media.sample_rate
        time_base = stream.time_base
        assert time_base is not None
        # Positions count from the first sample the decoder outputs: for an MP3 with a LAME tag that
        # sample has the pts of start_time (the encoder and decoder delay), as in revenge.hls.decode.
        origin = round((stream.start_time or 0) * time_base * rate)
        if start > 0:
            source.seek(int((origin + start) / (time_base * rate)), stream=stream, backward=True)
        position: int | None = None if start > 0 else 0
        for frame in source.decode(stream):
            if frame.pts is not None:
                position = round(frame.pts * time_base * rate) - origin
            elif position is None:
                position = 0
            lo, hi = max(start - position, 0), min(frame.samples, media.sample_count - position)
            position += frame.samples
            if hi <= lo:
                if hi < 0 or position >= media.sample_count:
                    break  # past the file's count: the encoder padding of a lossy source
                continue
            yield frame if (lo, hi) == (0, frame.samples) else _slice(frame, lo, hi)
            if position >= media.sample_count:
                break


def _slice(frame: av.AudioFrame, lo: int, hi: int) -> av.AudioFrame:
    """Samples ``[lo, hi)`` of ``frame`` as a new frame (same format, layout and rate)."""
    data = frame.to_ndarray()
    channels = 1 if frame.format.is_planar else len(frame.layout.channels)
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, lo * channels : hi * channels]),
                                     format=frame.format.name, layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out


def _silence(codec: av.AudioCodecContext, samples: int) -> av.AudioFrame:
    fmt, layout = codec.format, codec.layout
    rows = len(layout.channels) if fmt.is_planar else 1
    width = samples if fmt.is_planar else samples * len(layout.channels)
    frame = av.AudioFrame.from_ndarray(np.zeros((rows, width), dtype=_DTYPES[fmt.name.rstrip("p")]),
                                       format=fmt.name, layout=layout.name)
    frame.sample_rate = codec.sample_rate
    return frame


_DTYPES = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}
