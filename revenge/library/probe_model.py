"""What a probe answers (``Probe``, ``ProbeError``), and the parts both ways of probing share: the
audio fingerprint, a file's first bytes, the tags with the embedded picture."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revenge.library.art import embedded_art_id
from revenge.library.model import MediaFile
from revenge.library.mp3_frames import id3v2_size
from revenge.library.tags import TagError, Tags, read_tags_parsed

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream


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

    def feed(self, packet: av.Packet | memoryview) -> None:
        """A demuxed packet (its own buffer, not a copy: a packet supports the buffer protocol), or the
        same bytes read from the file."""
        size = packet.nbytes if isinstance(packet, memoryview) else packet.size
        if self._left > 0 and size:
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


@dataclass(frozen=True, slots=True)
class FileHead:
    """The first bytes of a file, and for a file that opens with an ID3v2 tag the bytes behind it."""

    start: bytes  # the file's first 12 bytes
    after_tag: bytes  # up to 16 KiB after any ID3v2 tag (the first MPEG frame, its Xing header)
    bytes_after_tag: int  # the file's size less the tag


def read_head(path: Path) -> FileHead:
    with open(path, "rb") as fh:
        start = fh.read(12)
        tag = id3v2_size(start)
        fh.seek(tag)
        return FileHead(start, fh.read(16 * 1024), os.fstat(fh.fileno()).st_size - tag)


def tags_and_art(path: Path, metadata: Iterable[tuple[str, str]], separators: Sequence[str],
                 container: str, codec: str) -> tuple[Tags, Any, str | None, bool]:
    """The tags as mutagen parsed them, the file as parsed, and its embedded picture's art id (with
    whether it was read: art never fails a probe, the art index reads the file again)."""
    try:
        tags, parsed = read_tags_parsed(path, metadata, separators, container, codec)
    except TagError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        return tags, parsed, embedded_art_id(parsed), True
    except Exception:
        return tags, parsed, None, False
