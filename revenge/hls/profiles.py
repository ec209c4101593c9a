"""The HLS ladder: what each profile encodes to, and the output format it gives a given source.

Pure: no I/O. The transcoder and the init-segment writer read everything they need from
:class:`OutputFormat`, so one object decides rate, channels, bit rate, frame grid and pre-roll.
"""

from __future__ import annotations

from dataclasses import dataclass

from revenge.config import HLS_PROFILE_NAMES

AAC_FRAME = 1024  # samples per AAC-LC frame
OPUS_FRAME = 960  # 20 ms at 48 kHz, libopus' default frame
FLAC_BLOCK = 4096  # our FLAC block size: on the grid of every common rate, ~93 ms at 44.1 kHz


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    encoder: str  # PyAV/FFmpeg encoder name
    codecs: str  # the RFC 6381 value for the playlists' CODECS attribute
    bit_rate: int  # stereo target in bits per second (0: lossless, no target)
    frame_size: int  # samples per codec frame at the output rate: the segment grid
    # Frames encoded before a segment's first kept frame and after its last one. A fresh encoder
    # per segment needs its MDCT overlap and psychoacoustic state warmed on the same audio the
    # neighbouring segment saw, or every boundary clicks. FLAC frames are independent: none needed.
    preroll_frames: int
    postroll_frames: int
    lossless: bool

    @property
    def is_aac(self) -> bool:
        return self.encoder == "aac"


# 16 AAC frames (372 ms at 44.1 kHz) before a run's first kept frame: two warm the MDCT overlap (no
# click), but FFmpeg's encoder adapts its rate-control lambda frame by frame, and from cold it took
# 9-12 frames to reach a continuous encode's state: with 2 or 8, a run's first ~100 ms null-tested
# 17.7 dB worse than the same spot of a continuous encode (aac-256, 31 dB against ~49). 16 for margin:
# 14 more frames per run of 3 x 258 (+1.8 % encoding).
AAC_PREROLL_FRAMES = 16


def _aac(kbps: int) -> Profile:
    return Profile(f"aac-{kbps}", "aac", "mp4a.40.2", kbps * 1000, AAC_FRAME, AAC_PREROLL_FRAMES, 1, False)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        _aac(64),
        _aac(128),
        _aac(192),
        _aac(256),
        _aac(320),
        # 25 frames (0.5 s): libopus' rate control and prediction state then match a continuous
        # encode's almost bit for bit at the boundary (-75 dB), for 8 % more encoding per segment.
        Profile("opus-128", "libopus", "Opus", 128_000, OPUS_FRAME, 25, 1, False),
        Profile("flac", "flac", "fLaC", 0, FLAC_BLOCK, 0, 0, True),
    )
}
assert tuple(PROFILES) == HLS_PROFILE_NAMES, "profiles.py and config.HLS_PROFILE_NAMES must agree"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """What one profile produces for one item."""

    profile: Profile
    sample_rate: int
    channels: int
    bit_rate: int  # encoder target (0 for FLAC)
    bits_per_sample: int  # 16 or 24: the FLAC sample size; 16 for the lossy codecs' sample entry

    @property
    def layout(self) -> str:
        return layout_name(self.channels)

    @property
    def frame_size(self) -> int:
        return self.profile.frame_size


def layout_name(channels: int) -> str:
    """FFmpeg's default layout name for a channel count (what the resampler converts to)."""
    return {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}[channels]


def lossy_output_rate(source_rate: int) -> int:
    """44.1 kHz family stays 44.1 kHz, everything else goes to 48 kHz (22050 → 44100, 96000 → 48000,
    32000 → 48000): the two rates every AAC decoder and browser handles."""
    return 44100 if source_rate % 11025 == 0 else 48000


def is_offered(profile: Profile, source_lossless: bool) -> bool:
    """FLAC only for lossless sources: re-encoding lossy audio losslessly just wastes bits."""
    return source_lossless or not profile.lossless


def output_format(profile: Profile, source_rate: int, source_channels: int,
                  source_bits: int = 16) -> OutputFormat:
    """The output of ``profile`` for a source (the item's first file) of this rate and channel count.

    AAC and Opus: mono stays mono at half the bit rate, more than two channels are downmixed to
    stereo. FLAC is lossless, so it keeps the source's rate, channels (up to 8) and sample size.
    """
    if source_rate <= 0 or source_channels <= 0:
        raise ValueError(f"bad source format: {source_rate} Hz, {source_channels} channels")
    if profile.lossless:
        channels = min(source_channels, 8)
        return OutputFormat(profile, source_rate, channels, 0, 24 if source_bits > 16 else 16)
    channels = 1 if source_channels == 1 else 2
    rate = 48000 if profile.encoder == "libopus" else lossy_output_rate(source_rate)
    bit_rate = profile.bit_rate // 2 if channels == 1 else profile.bit_rate
    return OutputFormat(profile, rate, channels, bit_rate, 16)
