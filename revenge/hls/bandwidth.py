"""A variant's declared BANDWIDTH and AVERAGE-BANDWIDTH, without waiting on an encode. Pure.

A segment is its container overhead (exact from its frame count) plus codec payload. Segments already
encoded count with their real size: they are facts, since a segment is byte-identical whoever encodes
it. The others are predicted from a model of the codec at its settings (:func:`payload_rates`), which
RFC 8216bis §4.3.4.2 allows before every segment exists ("a representative period of similar
content, encoded using the same settings"). Once every segment has been encoded once, both values are
exact: BANDWIDTH the highest segment bit rate, AVERAGE-BANDWIDTH all bytes over all seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from revenge.hls.fmp4 import media_segment_overhead
from revenge.hls.plan import Segment, SegmentPlan
from revenge.hls.profiles import OutputFormat
from revenge.library.model import is_pcm_codec

# Measured on FFmpeg's AAC (twoloop) and libopus (constrained VBR) over music, tones, noise, silence
# after 6 s of silence, mono and stereo, 44.1 and 48 kHz: a full segment's payload ran at 0.71-1.04x
# the nominal rate (below it on tonal content at 256k and up), a short last one of 2-4 frames up to
# 1.45x (the encoder's final flush). The bound: 10 % over nominal plus two frames' worth.
LOSSY_BOUND = Fraction(110, 100)
BOUND_SLACK_FRAMES = 2
# FLAC of uncompressed PCM (WAV, AIFF) whose FLAC size is not known yet: a typical ratio on music.
PCM_TO_FLAC = Fraction(58, 100)
# A FLAC frame never holds more than its samples verbatim plus headers (< 1 % at 4096 samples).
FLAC_BOUND = Fraction(101, 100)


@dataclass(frozen=True, slots=True)
class PayloadRates:
    """Codec payload a rendition is predicted to carry: ``mean`` bytes per presented second, and at
    most ``bound`` bytes per second plus ``slack`` bytes in any one segment."""

    mean: Fraction
    bound: Fraction
    slack: Fraction


def payload_rates(fmt: OutputFormat, source_codec: str, source_bit_rate: int) -> PayloadRates:
    """The model for a rendition of ``fmt`` from a source of this codec and bit rate (bits/s).

    Lossy rungs: the encoder's nominal rate. FLAC: the source's own rate when it is compressed
    lossless audio (re-encoding FLAC as FLAC keeps its size within ~2 %), :data:`PCM_TO_FLAC` of it
    when it is PCM; never more than the PCM rate, which bounds it."""
    if fmt.profile.lossless:
        pcm = Fraction(fmt.sample_rate * fmt.channels * fmt.bits_per_sample, 8)
        source = pcm * PCM_TO_FLAC if is_pcm_codec(source_codec) else Fraction(source_bit_rate, 8)
        return PayloadRates(min(source, pcm), pcm * FLAC_BOUND, Fraction(0))
    nominal = Fraction(fmt.bit_rate, 8)
    frame_seconds = Fraction(fmt.frame_size, fmt.sample_rate)
    return PayloadRates(nominal, nominal * LOSSY_BOUND, nominal * frame_seconds * BOUND_SLACK_FRAMES)


def _segment_shapes(plan: SegmentPlan) -> list[tuple[Segment, range]]:
    """Every segment of the plan as (representative, the indexes it stands for): segment 0 (it
    carries the priming), the identical full ones, and the last one (it ends the audio). A long book
    has thousands of segments; this keeps the prediction three terms long."""
    count = plan.count
    shapes = [(plan.segment(0), range(0, 1))]
    if count > 2:
        shapes.append((plan.segment(1), range(1, count - 1)))
    if count > 1:
        shapes.append((plan.segment(count - 1), range(count - 1, count)))
    return shapes


def declared_bandwidth(plan: SegmentPlan, rates: PayloadRates, sizes: Sequence[int],
                       last_durations: bool = False) -> tuple[int, int]:
    """(BANDWIDTH, AVERAGE-BANDWIDTH) in bits/s. ``sizes`` holds one entry per segment of the plan:
    its size in bytes (``moof`` + ``mdat`` as fmp4 writes it) when it has been encoded, else 0.
    ``last_durations``: the last segment's ``trun`` also carries per-sample durations (a FLAC
    stream's short last frame)."""
    if len(sizes) != plan.count:
        raise ValueError(f"{len(sizes)} sizes for a plan of {plan.count} segments")
    last = plan.count - 1

    def overhead(segment: Segment) -> int:
        return media_segment_overhead(plan.frames_in(segment), last_durations and segment.index == last)

    peak = Fraction(0)
    total = Fraction(0)
    for shape, indexes in _segment_shapes(plan):
        seconds = plan.duration(shape)
        least = overhead(shape)
        measured = [sizes[i] for i in indexes if sizes[i]]
        for size in measured:
            if size < least:
                raise ValueError(f"{size} bytes is less than a segment's own container ({least})")
        if measured:
            peak = max(peak, 8 * Fraction(max(measured)) / seconds)
            total += sum(measured)
        unmeasured = len(indexes) - len(measured)
        if unmeasured:
            peak = max(peak, 8 * (rates.bound * seconds + rates.slack + least) / seconds)
            total += unmeasured * (rates.mean * seconds + least)
    return ceil(peak), ceil(8 * total / plan.total_duration)
