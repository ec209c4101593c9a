"""The ladder and what each profile makes of a source (pure rules)."""

from __future__ import annotations

import pytest

from revenge.config import HLS_PROFILE_NAMES
from revenge.hls.profiles import PROFILES, is_offered, lossy_output_rate, output_format


def test_every_configurable_profile_exists_with_its_codec_string() -> None:
    assert tuple(PROFILES) == HLS_PROFILE_NAMES
    assert {p.codecs for n, p in PROFILES.items() if n.startswith("aac-")} == {"mp4a.40.2"}
    assert PROFILES["flac"].codecs == "fLaC"
    assert PROFILES["opus-128"].codecs == "Opus"
    assert [PROFILES[f"aac-{k}"].bit_rate for k in (64, 128, 192, 256, 320)] == [
        64_000, 128_000, 192_000, 256_000, 320_000]
    # Lossy codecs warm their encoder before every segment; FLAC frames are independent.
    assert all(p.preroll_frames >= 2 and p.postroll_frames >= 1 for p in PROFILES.values() if not p.lossless)


@pytest.mark.parametrize(("source", "expected"), [
    (44100, 44100), (22050, 44100), (11025, 44100), (88200, 44100), (176400, 44100),
    (48000, 48000), (96000, 48000), (32000, 48000), (16000, 48000), (8000, 48000), (192000, 48000),
])
def test_lossy_rate_follows_the_source_family(source: int, expected: int) -> None:
    assert lossy_output_rate(source) == expected
    assert output_format(PROFILES["aac-128"], source, 2).sample_rate == expected
    assert output_format(PROFILES["opus-128"], source, 2).sample_rate == 48000


@pytest.mark.parametrize(("channels", "out_channels", "bit_rate"), [(1, 1, 64_000), (2, 2, 128_000),
                                                                    (6, 2, 128_000), (8, 2, 128_000)])
def test_mono_stays_mono_at_half_rate_and_surround_is_downmixed(channels: int, out_channels: int,
                                                                bit_rate: int) -> None:
    fmt = output_format(PROFILES["aac-128"], 48000, channels)
    assert (fmt.channels, fmt.bit_rate) == (out_channels, bit_rate)
    assert fmt.layout == ("mono" if out_channels == 1 else "stereo")


def test_flac_is_lossless_and_only_for_lossless_sources() -> None:
    fmt = output_format(PROFILES["flac"], 96000, 6, source_bits=24)
    assert (fmt.sample_rate, fmt.channels, fmt.bits_per_sample, fmt.bit_rate) == (96000, 6, 24, 0)
    assert output_format(PROFILES["flac"], 44100, 2).bits_per_sample == 16
    assert is_offered(PROFILES["flac"], source_lossless=True)
    assert not is_offered(PROFILES["flac"], source_lossless=False)
    assert is_offered(PROFILES["aac-64"], source_lossless=False)


def test_bad_source_format_is_refused() -> None:
    with pytest.raises(ValueError):
        output_format(PROFILES["aac-128"], 0, 2)
