"""Real media files for tests, generated with PyAV (nothing binary is committed).

``write_audio`` returns the exact number of samples per channel it wrote: the decoded file must give
back exactly that many (FFmpeg's decoders honour the gapless metadata the muxers write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# extension → (encoder, container format or None to infer from the extension)
FORMATS: dict[str, tuple[str, str | None]] = {
    ".flac": ("flac", None),
    ".mp3": ("libmp3lame", None),
    ".m4a": ("aac", "ipod"),
    ".m4b": ("aac", "ipod"),
    ".opus": ("libopus", "ogg"),
    ".ogg": ("libvorbis", "ogg"),
    ".wav": ("pcm_s16le", None),
}


@dataclass(frozen=True)
class Generated:
    path: Path
    sample_rate: int
    channels: int
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def make_signal(samples: int, rate: int, channels: int, kind: str = "sine", freq: float = 1000.0,
                start: int = 0, seed: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """float32 planar (channels, samples). ``start`` offsets the sample clock (continuing a sine)."""
    t = (np.arange(samples, dtype=np.float64) + start) / rate
    if kind == "sine":
        mono = amplitude * np.sin(2 * np.pi * freq * t)
    elif kind == "noise":
        mono = amplitude * np.random.default_rng(seed + start).uniform(-1.0, 1.0, samples)
    elif kind == "silence":
        mono = np.zeros(samples)
    elif kind == "music":  # a few harmonics with a slow tremolo: compresses like real music
        mono = amplitude * 0.25 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 330 * t)
                                   + np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 1760 * t))
        mono *= 0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t)
    elif kind == "late":  # 6 s of silence, then noise: a first segment unlike the rest
        mono = np.where(t < 6.0, 0.0, amplitude * np.random.default_rng(seed).uniform(-1.0, 1.0, samples))
    else:
        raise ValueError(kind)
    out = np.empty((channels, samples), dtype=np.float32)
    for ch in range(channels):
        # Slightly different phase per channel so a stereo downmix bug would show.
        out[ch] = mono if ch == 0 else np.roll(mono, ch * 7)
    return out


def _frame(data: np.ndarray, fmt: str, layout: str) -> av.AudioFrame:
    if fmt == "s16":
        packed = (np.clip(data.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        return av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
    if fmt == "s16p":
        return av.AudioFrame.from_ndarray((np.clip(data, -1, 1) * 32767).astype(np.int16),
                                          format="s16p", layout=layout)
    if fmt == "flt":
        return av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T).reshape(1, -1),
                                          format="flt", layout=layout)
    return av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)


def write_audio(path: Path, *, seconds: float | None = None, samples: int | None = None,
                rate: int = 44100, channels: int = 2, kind: str = "sine", freq: float = 1000.0,
                tags: dict[str, str] | None = None, bit_rate: int | None = None,
                chapters: list[tuple[float, float, str]] | None = None, start: int = 0) -> Generated:
    """Encode a test signal to ``path`` (format from its extension). Returns what was written.
    ``start`` offsets the signal's sample clock: a file that continues another's tone."""
    if samples is None:
        assert seconds is not None
        samples = round(seconds * rate)
    encoder, fmt = FORMATS[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}.0" \
        if channels != 6 else "5.1"
    with av.open(str(path), "w", format=fmt) as container:
        if tags:
            container.metadata.update(tags)
        stream = container.add_stream(encoder, rate=rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        if chapters:
            container.set_chapters([
                {"id": i + 1, "start": int(s * 1000), "end": int(e * 1000),
                 "time_base": __import__("fractions").Fraction(1, 1000), "metadata": {"title": title}}
                for i, (s, e, title) in enumerate(chapters)
            ])
        # Feed whole encoder frames with a short last one: PyAV's own re-framing would pad the end
        # with silence, and the file would hold more samples than we say we wrote.
        stream.codec_context.open(strict=False)
        block = stream.codec_context.frame_size or 4096
        pts = 0
        for offset in range(0, samples, block):
            n = min(block, samples - offset)
            data = make_signal(n, rate, channels, kind, freq, start=start + offset)
            frame = _frame(data, stream.codec_context.format.name, layout)
            frame.sample_rate = rate
            frame.pts = pts
            pts += n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Generated(path, rate, channels, samples)


def decode_samples(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode a file with PyAV to float32 planar (channels, samples) and its rate."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    return np.concatenate(chunks, axis=1), rate


def corrupt_file(path: Path, size: int = 20_000, seed: int = 7) -> Path:
    """Random bytes behind an audio extension: must fail to probe, never crash a scan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path
