"""The segment grid of one (item, profile): a pure function of exact sample counts.

Two timelines, both in samples at the output rate:

* the *presentation* timeline ``[0, total)``: the source's audio, nothing more;
* the *media* timeline of the fMP4 track: ``media = presentation + priming``, where ``priming`` is
  the encoder's delay (AAC 1024, Opus 312, FLAC 0). Encoded packets sit on this timeline at
  multiples of the codec frame size; the init segment's edit list maps it back (media_time = priming,
  duration = total), so players drop the priming and the end padding.

Segments are consecutive runs of ``frames_per_segment`` codec frames on the media timeline; the last
one is shorter. Segment 0 carries the priming frame, so its presentation duration is shorter by
``priming`` samples. Whichever segment is asked first, the grid is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    media_start: int  # first media sample (a multiple of the frame size)
    media_end: int  # one past the last media sample carried (a multiple of the frame size)
    start: int  # first presentation sample it presents
    end: int  # one past the last presentation sample it presents

    @property
    def samples(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    total: int  # presentation samples at the output rate (> 0)
    rate: int  # output sample rate
    frame_size: int  # samples per codec frame
    priming: int  # encoder delay in samples (0 <= priming)
    frames_per_segment: int

    def __post_init__(self) -> None:
        if self.total <= 0:
            raise ValueError("a plan needs at least one sample")
        if self.rate <= 0 or self.frame_size <= 0 or self.priming < 0 or self.frames_per_segment <= 0:
            raise ValueError("rate, frame size and frames per segment must be positive, priming >= 0")
        if self.frames_per_segment * self.frame_size <= self.priming:
            raise ValueError("a segment must be longer than the encoder priming")

    @property
    def media_total(self) -> int:
        """Media samples that are presented: the priming plus the audio (end padding excluded)."""
        return self.priming + self.total

    @property
    def media_frames(self) -> int:
        """Codec frames on the media timeline: the last one is padded by the encoder."""
        return -(-self.media_total // self.frame_size)

    @property
    def count(self) -> int:
        return -(-self.media_frames // self.frames_per_segment)

    def segment(self, index: int) -> Segment:
        if not 0 <= index < self.count:
            raise IndexError(f"segment {index} out of range 0..{self.count - 1}")
        first_frame = index * self.frames_per_segment
        end_frame = min(first_frame + self.frames_per_segment, self.media_frames)
        media_start = first_frame * self.frame_size
        media_end = end_frame * self.frame_size
        start = max(0, media_start - self.priming)
        end = min(self.total, media_end - self.priming)
        return Segment(index, media_start, media_end, start, end)

    def segments(self) -> list[Segment]:
        return [self.segment(i) for i in range(self.count)]

    def frames_in(self, segment: Segment) -> int:
        return (segment.media_end - segment.media_start) // self.frame_size

    def duration(self, segment: Segment) -> Fraction:
        """Exact presentation duration in seconds."""
        return Fraction(segment.samples, self.rate)

    @property
    def total_duration(self) -> Fraction:
        return Fraction(self.total, self.rate)


def frames_per_segment(target_seconds: float, rate: int, frame_size: int) -> int:
    """The most whole frames that fit in the target (at least one): 258 AAC frames at 44.1 kHz
    (5.991 s), 281 at 48 kHz (5.995 s), 300 Opus frames (6.000 s). Never longer than the target, so
    EXT-X-TARGETDURATION stays ceil(target)."""
    target = Fraction(round(target_seconds * 1_000_000), 1_000_000)
    return max(1, floor(target * rate / frame_size))


def converted_count(samples: int, source_rate: int, output_rate: int) -> int:
    """Samples a source of ``samples`` at ``source_rate`` has at ``output_rate``: ceil(n·out/in).

    This is exactly what FFmpeg's resampler (swr) yields for the whole input when flushed, and the
    transcoder trims or pads each file to it, so the plan and the audio always agree.
    """
    if source_rate == output_rate:
        return samples
    return -(-samples * output_rate // source_rate)


def plan_segments(total: int, rate: int, frame_size: int, priming: int, target_seconds: float) -> SegmentPlan:
    return SegmentPlan(total, rate, frame_size, priming, frames_per_segment(target_seconds, rate, frame_size))


def extinf_text(duration: Fraction, places: int = 6) -> str:
    """Decimal seconds rounded half-up to ``places`` digits (RFC 8216 allows any precision)."""
    scale = 10**places
    units = floor(duration * scale + Fraction(1, 2))
    return f"{units // scale}.{units % scale:0{places}d}"


def target_duration(plan: SegmentPlan, places: int = 6) -> int:
    """EXT-X-TARGETDURATION: ceil of the largest EXTINF as written."""
    # Only three shapes exist: segment 0 (carries the priming), a full one, and the last one.
    candidates = {0, min(1, plan.count - 1), plan.count - 1}
    longest = max(Fraction(extinf_text(plan.duration(plan.segment(i)), places)) for i in candidates)
    return max(1, ceil(longest))
