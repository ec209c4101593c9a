"""The prepared rendition: one item in one profile, and the encoder it is encoded with.

A :class:`Rendition` is immutable and cheap to make (:func:`prepare_rendition` opens one encoder,
and for FLAC one source file): the output format, the exact segment plan, the encoder's delay and
codec configuration, hence the init segment. Encoding its segments is
:mod:`revenge.hls.transcode`'s job; decoding its sources is :mod:`revenge.hls.decode`'s.

Encoder delay ("priming") is handled once, at the start of the timeline, per codec:

* Opus: the priming packet is kept and announced by ``dOps`` PreSkip (plus the edit list the Opus
  mapping asks for); every decoder we know honours PreSkip, so the output is exact.
* AAC: the priming packet is kept too (dropping it leaves the first frame without its overlap
  partner: the first ~448 samples decode to silence and the next ~250 fade in), and announced twice:
  the edit list (media_time = the delay), which FFmpeg 6+ and MSE players honour in fragmented MP4,
  and an ``iTunSMPB`` tag in the ``moov``, which FFmpeg up to 5.x (it ignores fragmented edit lists)
  and Apple's players honour. A player that honours neither plays 1024 samples (23 ms) of lead-in.
* FLAC has no delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from revenge.errors import raise_if_out_of_descriptors
from revenge.hls import fmp4
from revenge.hls.decode import SourceError, SourceMissing, sample_dtype
from revenge.hls.gain import Gain, gain_name
from revenge.hls.plan import SegmentPlan, converted_count, plan_segments
from revenge.hls.profiles import OutputFormat, Profile, output_format
from revenge.library.model import Item, MediaFile


@dataclass(frozen=True, slots=True)
class Rendition:
    """One item in one profile: the output format, its exact plan and its init segment."""

    item_id: str
    fingerprint: str
    files: tuple[MediaFile, ...]
    format: OutputFormat
    file_counts: tuple[int, ...]  # each file's samples at the output rate
    plan: SegmentPlan
    encoder_delay: int  # samples: the encoder's first packet has pts -encoder_delay
    priming: int  # media samples before presentation sample 0 (the encoder delay; 0 for FLAC)
    codec_config: bytes
    aac_coder: str
    # Segments encoded by one encoder fed continuously (see SegmentRun); 1 = each on its own.
    run_segments: int = 1
    # Linear factor the source's samples are scaled by (ReplayGain, revenge.hls.gain), or one per file.
    gain: Gain = 1.0

    @property
    def profile(self) -> Profile:
        return self.format.profile

    @property
    def key_name(self) -> str:
        """The profile, plus the gain when there is one: what segment and run keys name, so the
        segments of a gain rendition are never mixed with the plain ones (1.0 shares them)."""
        name = gain_name(self.gain)
        return f"{self.profile.name}@{name}" if name else self.profile.name

    @property
    def last_duration(self) -> int | None:
        """The last sample's duration when it is not a whole frame: FLAC's last frame holds only
        the samples left (no padding, no edit list trims it), so the last segment's ``trun`` says
        so, or MSE players (which sum trun durations) count up to a whole block more than the item
        lasts. Lossy codecs' last packet decodes a whole frame; the edit list trims it. None: whole."""
        plan = self.plan
        left = plan.media_total - (plan.media_frames - 1) * plan.frame_size
        return left if self.profile.lossless and left != plan.frame_size else None

    def init_segment(self) -> bytes:
        return fmp4.init_segment(self.track_info())

    def track_info(self) -> fmp4.TrackInfo:
        codec = {"aac": "aac", "libopus": "opus", "flac": "flac"}[self.profile.encoder]
        return fmp4.TrackInfo(
            codec=codec, sample_rate=self.format.sample_rate, channels=self.format.channels,
            bits_per_sample=self.format.bits_per_sample, frame_size=self.format.frame_size,
            priming=self.priming, total=self.plan.total, bit_rate=self.format.bit_rate,
            codec_config=self.codec_config,
        )


# --------------------------------------------------------------------------- encoder

def _encoder_sample_format(fmt: OutputFormat) -> str:
    if fmt.profile.encoder == "aac":
        return "fltp"
    if fmt.profile.encoder == "libopus":
        return "flt"
    return "s32" if fmt.bits_per_sample > 16 else "s16"


def open_encoder(fmt: OutputFormat, aac_coder: str) -> av.AudioCodecContext:
    ctx = av.CodecContext.create(fmt.profile.encoder, "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = fmt.sample_rate
    ctx.layout = fmt.layout
    ctx.format = _encoder_sample_format(fmt)
    ctx.time_base = Fraction(1, fmt.sample_rate)
    options: dict[str, str] = {}
    if fmt.bit_rate:
        ctx.bit_rate = fmt.bit_rate
    if fmt.profile.encoder == "aac":
        options["aac_coder"] = aac_coder
    elif fmt.profile.encoder == "flac":
        options["frame_size"] = str(fmt.frame_size)
        if fmt.bits_per_sample > 16:
            options["bits_per_raw_sample"] = "24"
    elif fmt.profile.encoder == "libopus":
        options["frame_duration"] = str(1000 * fmt.frame_size // 48000)
        options["vbr"] = "constrained"  # stays near the nominal rate: BANDWIDTH and ABR stay meaningful
        # CELT codes a band's energy as a delta from the previous frame's. Where a fresh encoder's
        # packets follow another encoder's (a run boundary), the decoder's previous energies are the
        # other encoder's, off by a coarse step here and there however long the pre-roll: 20-40 ms
        # at ~9 dB SNR where a continuous encode has ~29. Telling libopus to expect 5 % loss makes
        # it code energies robustly to a lost predecessor, which a foreign predecessor is too; at
        # the same rate the null test elsewhere is unchanged (34.8 vs 33.9 dB median). 2 % does not.
        options["packet_loss"] = "5"
    ctx.options = options
    ctx.open()
    if ctx.frame_size != fmt.frame_size:
        raise RuntimeError(f"{fmt.profile.encoder} frame size {ctx.frame_size}, expected {fmt.frame_size}")
    return ctx


def encoder_setup(fmt: OutputFormat, aac_coder: str) -> tuple[int, bytes]:
    """(delay, codec config) of the encoder: the delay measured as minus the first packet's pts."""
    ctx = open_encoder(fmt, aac_coder)
    config = bytes(ctx.extradata or b"")
    frame = make_frame(np.zeros((fmt.channels, fmt.frame_size), dtype=sample_dtype(fmt)), fmt, 0)
    packets = [*ctx.encode(frame), *ctx.encode(None)]
    if not packets or packets[0].pts is None:
        raise RuntimeError(f"{fmt.profile.encoder} produced no timed packet")
    delay = -int(packets[0].pts)
    if delay < 0:
        raise RuntimeError(f"{fmt.profile.encoder} first packet pts {packets[0].pts} > 0")
    return delay, config


def timeline_priming(fmt: OutputFormat, encoder_delay: int) -> int:
    """Media samples before source sample 0: the encoder's delay, kept (see the module docstring;
    FLAC has none)."""
    return encoder_delay if fmt.profile.encoder in ("libopus", "aac") else 0


def make_frame(block: np.ndarray, fmt: OutputFormat, pts: int) -> av.AudioFrame:
    """An encoder input frame from planar ``block`` (channels, n)."""
    encoder_format = _encoder_sample_format(fmt)
    if encoder_format == "fltp":
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=fmt.layout)
    else:  # packed formats: interleave
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T).reshape(1, -1),
                                           format=encoder_format, layout=fmt.layout)
    frame.sample_rate = fmt.sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, fmt.sample_rate)
    return frame


# --------------------------------------------------------------------------- preparing

def source_bits(media: MediaFile) -> int:
    """16 or 24: the sample size a lossless source's decoder gives (for the FLAC profile)."""
    try:
        with av.open(media.path) as container:
            ctx = container.streams.audio[0].codec_context
            if ctx.format is None:
                raise SourceError(f"{media.path}: no decodable audio")
            bits = ctx.bits_per_raw_sample if hasattr(ctx, "bits_per_raw_sample") else 0
            return 24 if (bits or 8 * ctx.format.bytes) > 16 else 16
    except FileNotFoundError as exc:
        raise SourceMissing(f"source file missing: {exc.filename}") from exc
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise_if_out_of_descriptors(exc)
        raise SourceError(f"cannot open source: {exc}") from exc


def prepare_rendition(item: Item, profile: Profile, segment_seconds: float, aac_coder: str,
                      run_segments: int = 1) -> Rendition:
    """Output format, exact plan and encoder configuration of ``item`` in ``profile`` (cheap: opens
    one encoder, and for FLAC one source file to read its sample size)."""
    first = item.files[0]
    bits = source_bits(first) if profile.lossless else 16
    fmt = output_format(profile, first.sample_rate, first.channels, bits)
    counts = tuple(converted_count(f.sample_count, f.sample_rate, fmt.sample_rate) for f in item.files)
    if sum(counts) <= 0:
        raise SourceError("the item has no audio samples")
    delay, config = encoder_setup(fmt, aac_coder)
    priming = timeline_priming(fmt, delay)
    if (delay - priming) % fmt.frame_size:
        raise RuntimeError(f"{profile.encoder}: delay {delay} does not keep packets on the frame grid")
    plan = plan_segments(sum(counts), fmt.sample_rate, fmt.frame_size, priming, segment_seconds)
    if run_segments < 1:
        raise ValueError("run_segments must be at least 1")
    return Rendition(item.id, item.fingerprint, item.files, fmt, counts, plan, delay, priming, config,
                     aac_coder, run_segments)
