"""Exact, constant-cost seeks in MP3 files.

FFmpeg seeks MP3 exactly only by reading every frame header from the start of the file (its other
modes use the Xing TOC or a CBR estimate, which land on approximate timestamps). On a ten-hour
audiobook that is a second per segment deep into the file. Here one header scan per file (on first
need, kept per path/size/mtime) records the byte offset and exact timeline sample of every
:data:`STRIDE`-th frame; a segment then demuxes from the nearest recorded frame, through a window
on the file that starts there (so FFmpeg sees an MP3 stream starting at that frame), and places
samples relative to it. MP3 frames are self-delimiting; after two frames of decoder pre-roll the
bit reservoir is refilled and the output is bit-identical to a decode from the start (tested).
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass

import av

from revenge.library.model import MediaFile

STRIDE = 32  # frames between seek points: ~0.8 s at 44.1 kHz
MP3_CODECS = frozenset({"mp3", "mp3float"})


@dataclass(frozen=True, slots=True)
class SeekPoint:
    offset: int  # byte offset of an MP3 frame's sync word
    sample: int  # exact timeline sample of that frame's first decoded sample (negative for frame 0)


@dataclass(frozen=True)
class SeekIndex:
    offsets: array  # array('q')
    samples: array  # array('q'), ascending

    def point_before(self, sample: int) -> SeekPoint | None:
        """The last recorded frame starting at or before ``sample``."""
        at = bisect.bisect_right(self.samples, sample) - 1
        if at < 0:
            return None
        return SeekPoint(self.offsets[at], self.samples[at])


def is_mp3(media: MediaFile) -> bool:
    return media.codec in MP3_CODECS and media.container == "mp3"


def build_seek_index(path: str) -> SeekIndex:
    """Demux (no decoding) the whole file once, keeping every STRIDE-th frame's position."""
    offsets, samples = array("q"), array("q")
    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        time_base = stream.time_base
        assert time_base is not None
        origin = round((stream.start_time or 0) * time_base * rate)
        for number, packet in enumerate(container.demux(stream)):
            if number % STRIDE or packet.pts is None or packet.pos is None or packet.pos < 0:
                continue
            offsets.append(packet.pos)
            samples.append(round(packet.pts * time_base * rate) - origin)
    return SeekIndex(offsets, samples)


class SeekIndexes:
    """Seek indexes of MP3 files, built on first need by the encode threads and kept for the most
    recently used ``max_files`` files (keyed by path, size and mtime: a changed file is re-read)."""

    def __init__(self, max_files: int = 256, min_seconds: float = 30.0) -> None:
        self.max_files = max_files
        self.min_seconds = min_seconds  # closer to the start, FFmpeg's own exact seek is cheap
        self._indexes: OrderedDict[tuple[str, int, int], SeekIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, int, int], threading.Lock] = {}
        self.builds = 0

    def point_for(self, media: MediaFile, sample: int) -> SeekPoint | None:
        """Where to start demuxing ``media`` to decode from ``sample`` on, or None to let FFmpeg seek."""
        if not is_mp3(media) or sample < self.min_seconds * media.sample_rate:
            return None
        return self._index(media).point_before(sample)

    def _index(self, media: MediaFile) -> SeekIndex:
        key = (media.path, media.size, media.mtime_ns)
        with self._lock:
            index = self._indexes.get(key)
            if index is not None:
                self._indexes.move_to_end(key)
                return index
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one scan per file, whoever asks first; others wait for it
            with self._lock:
                index = self._indexes.get(key)
            if index is not None:
                return index
            try:
                index = build_seek_index(media.path)
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self.builds += 1
                self._indexes[key] = index
                while len(self._indexes) > self.max_files:
                    self._indexes.popitem(last=False)
        return index


class FileWindow(io.RawIOBase):
    """A read-only view of a file from ``offset`` on, as if the file started there."""

    def __init__(self, path: str, offset: int) -> None:
        super().__init__()
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._size = max(0, os.fstat(self._file.fileno()).st_size - offset)
        self._file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._file.readinto(buffer) or 0

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = position
        elif whence == io.SEEK_CUR:
            target = self.tell() + position
        else:
            target = self._size + position
        target = max(0, target)
        self._file.seek(self._offset + target)
        return target

    def tell(self) -> int:
        return self._file.tell() - self._offset

    def close(self) -> None:
        self._file.close()
        super().close()
