"""Helpers for the HLS tests: an independent ISO-BMFF box reader, items built by the real probe,
the continuous-encode reference and ffmpeg/ffprobe as independent HLS clients."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from revenge.hls import fmp4
from revenge.hls.decode import read_timeline
from revenge.hls.rendition import Rendition, make_frame, open_encoder
from revenge.library.assemble import build_item
from revenge.library.model import Item
from revenge.library.probe import probe_file

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex", b"moof", b"traf", b"dinf"}


@dataclass
class Box:
    type: str
    payload: bytes
    children: list[Box]

    def find(self, path: str) -> Box:
        """First descendant by a slash path of types, e.g. ``"trak/mdia/mdhd"``."""
        head, _, rest = path.partition("/")
        for child in self.children:
            if child.type == head:
                return child.find(rest) if rest else child
        raise KeyError(path)

    @property
    def version(self) -> int:
        return self.payload[0]

    @property
    def flags(self) -> int:
        return int.from_bytes(self.payload[1:4], "big")


def parse_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    end = len(data) if end is None else end
    boxes = []
    at = start
    while at < end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        assert size >= header and at + size <= end, f"box {kind!r} at {at} overruns ({size} bytes)"
        payload = data[at + header : at + size]
        children = parse_boxes(data, at + header, at + size) if kind in CONTAINERS else []
        boxes.append(Box(kind.decode("latin-1"), payload, children))
        at += size
    return boxes


def root(data: bytes) -> Box:
    return Box("", b"", parse_boxes(data))


@dataclass(frozen=True)
class Fragment:
    sequence: int
    tfdt: int
    sample_sizes: tuple[int, ...]
    default_duration: int
    mdat: bytes
    durations: tuple[int, ...]  # every sample's: the trun's own, else the tfhd default


def parse_fragment(data: bytes) -> Fragment:
    """One moof + mdat as written by the engine, checked against ISO/IEC 14496-12 as we go."""
    top = parse_boxes(data)
    assert [b.type for b in top] == ["moof", "mdat"], [b.type for b in top]
    moof, mdat = top
    sequence = struct.unpack(">I", moof.find("mfhd").payload[4:8])[0]
    tfhd = moof.find("traf/tfhd")
    assert tfhd.flags & 0x020000, "default-base-is-moof"
    track_id, default_duration = struct.unpack_from(">II", tfhd.payload, 4)
    assert track_id == 1
    tfdt = moof.find("traf/tfdt")
    base = struct.unpack_from(">Q" if tfdt.version == 1 else ">I", tfdt.payload, 4)[0]
    trun = moof.find("traf/trun")
    assert trun.flags & 0x000001 and trun.flags & 0x000200, "data offset and sample sizes"
    assert trun.flags & ~0x000301 == 0, f"trun flags {trun.flags:#x}"
    count, data_offset = struct.unpack_from(">Ii", trun.payload, 4)
    if trun.flags & 0x000100:  # sample-duration-present: (duration, size) per sample
        entries = struct.unpack_from(f">{2 * count}I", trun.payload, 12)
        durations, sizes = entries[0::2], entries[1::2]
        assert len(trun.payload) == 12 + 8 * count
    else:
        sizes = struct.unpack_from(f">{count}I", trun.payload, 12)
        durations = (default_duration,) * count
        assert len(trun.payload) == 12 + 4 * count
    moof_size = len(moof.payload) + 8
    assert data_offset == moof_size + 8, "data offset points at the first mdat byte"
    assert sum(sizes) == len(mdat.payload)
    return Fragment(sequence, base, tuple(sizes), default_duration, mdat.payload, tuple(durations))


def split_samples(fragment: Fragment) -> Iterator[bytes]:
    at = 0
    for size in fragment.sample_sizes:
        yield fragment.mdat[at : at + size]
        at += size


def probed_item(paths: Sequence[Path], item_type: str = "track", relative: str | None = None) -> Item:
    """An Item as the scanner would build it (real probe), without a catalog."""
    probes = [probe_file(p) for p in paths]
    rel = relative or paths[0].name
    return build_item(item_type, rel, probes, folder_book=item_type == "audiobook")  # type: ignore[arg-type]


def decode_file(path: Path | str) -> tuple[np.ndarray, int]:
    """All decoded samples (float64, planar) and the rate, with PyAV (FFmpeg 8)."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        for frame in container.decode(stream):
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    return np.concatenate(chunks, axis=1).astype(np.float64), rate


def native_threads() -> int:
    """The process's OS threads (Python's and FFmpeg's), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line in /proc/self/status")


def continuous_stream(rendition: Rendition) -> bytes:
    """The whole item encoded in ONE pass with the same encoder settings and timeline rule (packets
    from media time 0), as init + a single fragment: the reference the click test compares with."""
    fmt = rendition.format
    pcm = read_timeline(rendition, 0, rendition.plan.total)
    ctx = open_encoder(fmt, rendition.aac_coder)
    kept: list[bytes] = []
    packets = []
    for offset in range(0, pcm.shape[1], fmt.frame_size):
        packets.extend(ctx.encode(make_frame(pcm[:, offset : offset + fmt.frame_size], fmt, offset)))
    packets.extend(ctx.encode(None))
    for packet in packets:
        if packet.size and packet.pts is not None and packet.pts + rendition.priming >= 0:
            kept.append(bytes(packet))
    return rendition.init_segment() + fmp4.media_segment(1, 0, fmt.frame_size, kept)


def ffmpeg_decode(url: str, timeout: float = 300) -> tuple[int, int, int, str]:
    """Debian's ffmpeg as the HLS client: (samples per channel, rate, channels, stderr)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels", "-of", "json", url],
        capture_output=True, timeout=timeout, check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "s16le", "-"],
                         capture_output=True, timeout=timeout)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    return len(run.stdout) // (2 * channels), rate, channels, run.stderr.decode(errors="replace")


def ffmpeg_pcm(url: str, channels: int, timeout: float = 300) -> np.ndarray:
    """Debian's ffmpeg as the HLS client: every decoded sample, float64 planar (channels, n)."""
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "f64le", "-"],
                         capture_output=True, timeout=timeout)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    return np.frombuffer(run.stdout, dtype="<f8").reshape(-1, channels).T


def snr_db(decoded: np.ndarray, source: np.ndarray) -> float:
    """Signal-to-noise ratio of ``decoded`` against ``source`` (same shape), in dB: the null test."""
    noise = float(np.sum((decoded - source) ** 2))
    return 10 * float(np.log10(float(np.sum(source**2)) / max(noise, 1e-30)))


def block_snr_db(decoded: np.ndarray, source: np.ndarray, block: int) -> np.ndarray:
    """The null test per block of ``block`` samples: each block's noise (``decoded`` − ``source``,
    same shape) against the whole source's mean power, in dB. Against the whole signal's power, not
    the block's, so a quiet block is not mistaken for a noisy one."""
    n = source.shape[1] // block * block
    power = float(np.mean(source[:, :n] ** 2))
    noise = ((decoded[:, :n] - source[:, :n]) ** 2).reshape(source.shape[0], -1, block).mean(axis=(0, 2))
    return 10 * np.log10(power / np.maximum(noise, 1e-30))
