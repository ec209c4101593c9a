"""A progressive transcode: an item's files decoded in order from an offset and encoded into one plain
stream (MP3, Ogg Opus, AAC in ADTS), handed out a chunk at a time so the first bytes leave after the
first encoded frames, not after the whole file. Blocking: each ``next_chunk`` runs in the encode pool
(``HlsEngine.run_encode``), so transcoded streams share the workers and back-pressure of HLS.

MP3 and ADTS have no header to seek back to on a pipe; Ogg carries Opus' pre-skip in its OpusHead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import av

from revenge.library.model import Item

CHUNK_SECONDS = 2.0  # of audio per chunk: small enough for a quick first byte, big enough to batch


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
    def __init__(self, item: Item, fmt: StreamFormat, kbps: int, offset_seconds: float = 0.0) -> None:
        self.item = item
        self.format = fmt
        source_rate = item.sample_rate
        rate = source_rate if source_rate in fmt.rates else fmt.rates[0]
        layout = "mono" if item.channels == 1 else "stereo"
        self._sink = _Sink()
        self._out = av.open(self._sink, "w", format=fmt.container)
        self._stream = self._out.add_stream(fmt.encoder, rate=rate, layout=layout)  # type: ignore[call-overload]
        self._stream.bit_rate = kbps * 1000
        codec = self._stream.codec_context
        self._resampler = av.AudioResampler(format=codec.format.name, layout=layout, rate=rate,
                                            frame_size=codec.frame_size or None)
        self._frames = self._decoded(offset_seconds)
        self._done = False
        self._encoded = 0  # samples at the output rate
        self.sent_ms = 0  # audio handed out by next_chunk so far

    def _decoded(self, offset: float) -> Iterator[av.AudioFrame]:
        for media in self.item.files:
            if offset >= media.duration_seconds:
                offset -= media.duration_seconds
                continue
            with av.open(media.path) as source:
                stream = source.streams.audio[0]
                skip = 0.0
                if offset > 0:
                    source.seek(int(offset / stream.time_base), stream=stream, backward=True)
                for frame in source.decode(stream):
                    if offset > 0 and frame.pts is not None:  # from the keyframe before: drop up to offset
                        start = float(frame.pts * stream.time_base)
                        end = start + frame.samples / frame.sample_rate
                        if end <= offset:
                            continue
                        skip = max(0.0, offset - start)
                        offset = 0.0
                        if skip > 0:
                            frame = _tail(frame, int(skip * frame.sample_rate))
                    yield frame
            offset = 0.0

    def next_chunk(self) -> bytes:
        """The next encoded bytes (b"" once the stream has ended and been flushed)."""
        if self._done:
            return b""
        wanted = CHUNK_SECONDS * self._stream.codec_context.sample_rate
        encoded = 0
        for frame in self._frames:
            for converted in self._resampler.resample(frame):
                encoded += converted.samples
                self._out.mux(self._stream.encode(converted))
            if encoded >= wanted:
                self._advance(encoded)
                return self._sink.take()
        for converted in self._resampler.resample(None):
            self._out.mux(self._stream.encode(converted))
        self._out.mux(self._stream.encode(None))
        self._advance(encoded)
        self.close()
        return self._sink.take()

    def _advance(self, samples: int) -> None:
        self._encoded += samples
        self.sent_ms = self._encoded * 1000 // self._stream.codec_context.sample_rate

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._out.close()


def _tail(frame: av.AudioFrame, skip: int) -> av.AudioFrame:
    data = frame.to_ndarray()
    planar = frame.format.is_planar
    kept = data[:, skip:] if planar else data[:, skip * len(frame.layout.channels):]
    out = av.AudioFrame.from_ndarray(kept, format=frame.format.name, layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out
