"""Check that a probed file holds the audio its header declares, before the catalog records it.

A header can outlive the audio it describes: a FLAC cut to half its length keeps STREAMINFO's total,
an MP3 with bytes appended behind its frames makes FFmpeg drop the Info frame count and estimate the
length from the bit rate. Listed at the declared length, such a file fails mid-play. So the probe
seeks near the end of what it is about to record and decodes the last seconds: the decoded end must
reach the recorded sample count (within a frame), or the file is refused with the reason. Reading
only the tail keeps the cost constant, whatever the file's length.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

TAIL_SECONDS = 2.0  # decoded before the recorded end (a backward seek may start earlier)
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
    """Decode from where ``container`` stands to the end: (end in samples from the stream's start,
    or None when nothing decoded; the longest frame, for the slack)."""
    time_base = stream.time_base or Fraction(1, rate)
    start = stream.start_time or 0
    ctx = stream.codec_context
    ctx.flush_buffers()
    end: int | None = None
    longest = int(ctx.frame_size or 0)
    for packet in container.demux(stream):
        try:
            frames = ctx.decode(packet if packet.size else None)
        except av.FFmpegError:
            continue
        for frame in frames:
            if frame.pts is not None:
                end = round((frame.pts - start) * (frame.time_base or time_base) * rate) + frame.samples
            elif end is not None:
                end += frame.samples
            longest = max(longest, frame.samples)
    return end, longest


def check_tail(path: Path, container: av.container.InputContainer, stream: av.stream.Stream,
               recorded: int, rate: int) -> str | None:
    """Seek to ``TAIL_SECONDS`` before the ``recorded`` end of ``stream`` (in the open ``container``
    of ``path``, wherever it was read to) and decode to the end of the file: the reason the file does
    not hold ``recorded`` samples, or None. Decode errors in the tail are tolerated as long as the end
    is reached (a damaged last frame is common and harmless: the transcoder pads a frame's worth)."""
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
