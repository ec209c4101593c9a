"""Check that a probed file holds the audio its header declares, before the catalog records it.

A header can outlive the audio it describes: a FLAC cut to half its length keeps STREAMINFO's total,
an MP3 with bytes appended behind its frames makes FFmpeg drop the Info frame count and estimate the
length from the bit rate. Listed at the declared length, such a file fails mid-play. So the probe
seeks to the last seconds of what it is about to record, reads to the end of the file and decodes
the last packets: the decoded end must reach the recorded sample count (within a frame), or the file
is refused with the reason. Reading only the tail keeps the cost constant, whatever the length.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

TAIL_SECONDS = 1.0  # the seek's target before the recorded end (a backward seek may land earlier)
DECODE_SECONDS = 0.25  # of those, decoded: the end position and that the last frames decode
MIN_DECODE_PACKETS = 4  # enough for a decoder to warm up (MP3 bit reservoir, Vorbis overlap)
_MAX_TAIL_PACKETS = 512
_MIN_SLACK = 1152  # samples: the end may fall short by up to one codec frame (one MP3 frame at least)


def _seconds(samples: int, rate: int) -> str:
    return f"{samples / rate:.1f} s"


def mp3_appended_bytes(declared_bytes: int | None, stream_bytes: int) -> int:
    """Bytes behind the frames an MP3's Xing/Info header counts, when there are so many that FFmpeg
    stops trusting the header's frame count (more than 1/16 of the stream: FFmpeg's own rule, under
    which it estimates the length from the bit rate instead). 0 when the header can be trusted."""
    if not declared_bytes or stream_bytes <= declared_bytes:
        return 0
    extra = stream_bytes - declared_bytes
    return extra if extra > declared_bytes >> 4 else 0


def end_problem(recorded: int, decoded_end: int | None, rate: int, slack: int) -> str | None:
    """Why a file whose tail decoded up to ``decoded_end`` (samples from its start; None when nothing
    decoded) does not hold the ``recorded`` samples; None when it does. ``slack``: one frame of the
    codec. A decoded end past the recorded one is fine (an edit list or end padding trims it)."""
    if decoded_end is None:
        return (f"its last seconds do not decode: the header declares {_seconds(recorded, rate)}, "
                "the audio ends earlier (truncated or damaged)")
    if decoded_end < recorded - max(slack, _MIN_SLACK):
        return (f"holds {_seconds(decoded_end, rate)} of audio but its header declares "
                f"{_seconds(recorded, rate)} (truncated or damaged)")
    return None


def _decoded_end(container: av.container.InputContainer, stream: av.stream.Stream,
                 rate: int) -> tuple[int | None, int]:
    """Demux from where ``container`` stands to the end of the file and decode the last packets:
    (where the decoded audio ends, in samples from the stream's start, or None when nothing decoded;
    the longest frame, for the slack). Only the last ``DECODE_SECONDS`` (at least ``MIN_DECODE_PACKETS``)
    are decoded, however far back the seek landed: demuxing is cheap, decoding is not (Ogg seeks land
    a second or more early, and Opus decodes slowest)."""
    time_base = stream.time_base or Fraction(1, rate)
    start = stream.start_time or 0
    tail: deque[av.Packet] = deque(maxlen=_MAX_TAIL_PACKETS)
    for packet in container.demux(stream):
        if packet.size:
            tail.append(packet)
    last_pts = next((p.pts for p in reversed(tail) if p.pts is not None), None)
    if last_pts is not None:
        cutoff = last_pts - DECODE_SECONDS / time_base
        while len(tail) > MIN_DECODE_PACKETS and tail[0].pts is not None and tail[0].pts < cutoff:
            tail.popleft()
    ctx = stream.codec_context
    ctx.flush_buffers()
    last: av.AudioFrame | None = None
    after_last = 0  # samples of frames without a timestamp after ``last``
    longest = int(ctx.frame_size or 0)
    for packet in (*tail, None):
        try:
            frames = ctx.decode(packet)
        except av.FFmpegError:
            continue  # e.g. the first MP3 frames, whose bit reservoir lies in frames not decoded
        for frame in frames:
            if frame.pts is not None:
                last, after_last = frame, 0
            elif last is not None:
                after_last += frame.samples
            longest = max(longest, frame.samples)
    if last is None or last.pts is None:
        return None, longest
    at = round((last.pts - start) * (last.time_base or time_base) * rate)
    end = at + last.samples + after_last
    return end, longest


def check_tail(path: Path, container: av.container.InputContainer, stream: av.stream.Stream,
               recorded: int, rate: int) -> str | None:
    """Seek to ``TAIL_SECONDS`` before the ``recorded`` end of ``stream`` (in the open ``container``
    of ``path``, wherever it was read to), read to the end of the file and decode its last packets:
    the reason the file does not hold ``recorded`` samples, or None. Decode errors are tolerated as
    long as the end is reached (a damaged last frame is common and harmless: the transcoder pads a
    frame's worth)."""
    time_base = stream.time_base or Fraction(1, rate)
    target = max(0, recorded - round(TAIL_SECONDS * rate))
    try:
        container.seek((stream.start_time or 0) + int(Fraction(target, rate) / time_base), stream=stream,
                       backward=True)
    except av.FFmpegError:
        # Some files cannot seek at all (a FLAC of one frame, without a seek table): read it all.
        with av.open(str(path)) as fresh:
            assert isinstance(fresh, av.container.InputContainer)
            end, longest = _decoded_end(fresh, fresh.streams.audio[0], rate)
            return end_problem(recorded, end, rate, longest)
    end, longest = _decoded_end(container, stream, rate)
    return end_problem(recorded, end, rate, longest)
