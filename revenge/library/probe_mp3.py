"""Probe an MP3 as LAME and FFmpeg write it from its bytes, without FFmpeg's demuxer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from revenge.library.model import MediaFile
from revenge.library.mp3_frames import ID3V1_BYTES, frame_header, frame_spans, mp3_declared_totals
from revenge.library.probe_model import CONTENT_BYTES, AudioHasher, FileHead, Probe, tags_and_art
from revenge.library.verify import mp3_appended_bytes

MAX_MP3_FRAME = 1441  # bytes: MPEG-1 Layer III at 320 kb/s, 32 kHz, padded


def mp3_by_frames(path: Path, head: FileHead, stat: os.stat_result,
                  artist_separators: Sequence[str] = ()) -> Probe | None:
    """An MP3 as LAME and FFmpeg write it, read from its bytes without FFmpeg's demuxer (opening it
    was the largest part of probing a tagged MP3): its first frame an Info/Xing header that counts the
    frames and bytes, with a gapless tag; an ID3v2 tag mutagen reads, without chapters. The result is
    what ``probe_file`` finds through PyAV, the same count, fingerprint and tags (tested side by side).
    None when the file is anything else, or any byte between or behind the frames is not an ID3v1
    tag: then it goes through PyAV like any other file, which also says what is wrong with it."""
    first = frame_header(head.after_tag, 0)
    totals = mp3_declared_totals(head.after_tag)
    if first is None or totals is None or not totals.frames or totals.stream_bytes is None \
            or totals.delay is None or totals.padding is None:
        return None
    if head.bytes_after_tag < totals.stream_bytes or mp3_appended_bytes(totals.stream_bytes,
                                                                          head.bytes_after_tag):
        return None
    frames_samples = totals.frames * first.samples
    samples = frames_samples - totals.delay - totals.padding
    if samples <= 0:
        return None
    want = first.size + CONTENT_BYTES + MAX_MP3_FRAME
    with open(path, "rb") as fh:
        fh.seek(stat.st_size - head.bytes_after_tag)
        data = fh.read(want)
    end = len(data)
    if end >= head.bytes_after_tag and data[end - ID3V1_BYTES:end - ID3V1_BYTES + 3] == b"TAG":
        end -= ID3V1_BYTES  # the whole file read: FFmpeg's packets stop before an ID3v1 tag
    spans = frame_spans(data, first.size, end, CONTENT_BYTES, first)
    audio = frame_header(data, spans[0][0]) if spans else None
    if audio is None:
        return None
    tags, parsed, embedded_art, art_read = tags_and_art(path, (), artist_separators, "mp3", "mp3")
    if parsed is None or parsed.getall("CHAP"):
        return None  # FFmpeg's metadata stands in for a missing ID3v2 tag, and reads the chapters
    hasher = AudioHasher()
    view = memoryview(data)
    for at, size in spans:
        hasher.feed(view[at:at + size])
    # FFmpeg's bit rate: under an Info header the first audio frame's (the header's own frame may have
    # another); under a Xing (variable) header its bytes over its length.
    bit_rate = audio.kbps * 1000 if totals.constant else \
        (totals.stream_bytes * 8 * first.rate + frames_samples // 2) // frames_samples
    media = MediaFile(path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns, container="mp3",
                      codec="mp3", sample_rate=first.rate, channels=first.channels, bit_rate=bit_rate,
                      sample_count=samples)
    return Probe(media, tags, (), hasher.hexdigest("mp3", first.rate, first.channels, samples),
                 embedded_art, art_read)
