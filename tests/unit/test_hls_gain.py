"""ReplayGain in the transcode: the factor from the tags (fallbacks, peak limit) and the clamp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from revenge.hls.gain import apply_gain, apply_gains, gain_db, gain_factor, gain_name, per_file
from revenge.library.tags import Tags


def db(factor: float) -> float:
    return 20 * math.log10(factor)


def test_track_and_album_gains_as_tagged() -> None:
    tags = Tags(rg_track_gain=-6.0, rg_track_peak=0.5, rg_album_gain=-3.0, rg_album_peak=0.6)
    assert db(gain_factor(tags, "track")) == pytest.approx(-6.0)
    assert db(gain_factor(tags, "album")) == pytest.approx(-3.0)
    assert gain_factor(tags, None) == 1.0


def test_fallbacks_album_to_track_to_none() -> None:
    assert gain_db(Tags(rg_track_gain=-4.0), "album") == -4.0
    assert gain_db(Tags(rg_album_gain=-2.0), "track") == -2.0
    assert gain_db(Tags(), "album") is None and gain_factor(Tags(), "track") == 1.0
    assert gain_factor(None, "album") == 1.0


def test_a_positive_gain_is_limited_by_the_tagged_peak() -> None:
    # +10 dB on a peak of 0.9 would clip: limited to -20·log10(0.9) = +0.915 dB.
    tags = Tags(rg_track_gain=10.0, rg_track_peak=0.9)
    assert db(gain_factor(tags, "track")) == pytest.approx(-20 * math.log10(0.9))
    assert gain_factor(tags, "track") * 0.9 == pytest.approx(1.0)
    # A negative gain is never touched by the peak; a zero or junk peak is ignored.
    assert gain_db(Tags(rg_track_gain=-8.0, rg_track_peak=1.2), "track") == -8.0
    assert gain_db(Tags(rg_track_gain=3.0, rg_track_peak=0.0), "track") == 3.0
    # The album peak goes with the album gain.
    assert gain_db(Tags(rg_album_gain=7.0, rg_album_peak=0.5, rg_track_peak=0.99), "album") == \
        pytest.approx(-20 * math.log10(0.5))


def test_unknown_modes_are_refused() -> None:
    with pytest.raises(ValueError):
        gain_db(Tags(), "loud")


def test_apply_gain_scales_and_clamps_floats_and_integers() -> None:
    pcm = np.array([[0.5, -0.9, 0.1]], dtype=np.float32)
    assert apply_gain(pcm, 1.0) is pcm
    out = apply_gain(pcm, 2.0)
    assert out.dtype == np.float32 and out.tolist() == [[1.0, -1.0, pytest.approx(0.2)]]
    ints = np.array([[20000, -30000, 100]], dtype=np.int16)
    scaled = apply_gain(ints, 2.0)
    assert scaled.dtype == np.int16 and scaled.tolist() == [[32767, -32768, 200]]


def test_per_file_gains_collapse_when_equal_and_name_the_key() -> None:
    assert per_file([]) == 1.0 and per_file([1.0, 1.0]) == 1.0 and per_file([0.5, 0.5]) == 0.5
    assert per_file([0.5, 0.25]) == (0.5, 0.25)
    assert gain_name(1.0) == "" and gain_name(0.5) == "0.5"
    # Deterministic and short whatever the track count; different vectors never share a name.
    assert gain_name((0.5, 0.25)) == gain_name((0.5, 0.25)) != gain_name((0.25, 0.5))
    assert len(gain_name(tuple(1 / n for n in range(1, 500)))) == 17


def test_each_files_factor_applies_to_its_own_samples_across_a_join() -> None:
    pcm = np.ones((2, 10), dtype=np.float32)
    # Files of 4, 4 and 6 samples; the block covers timeline samples 2..12: a part of each.
    out = apply_gains(pcm, 2, [4, 4, 6], (0.5, 0.25, 1.0))
    assert out.shape == pcm.shape
    assert out[0].tolist() == [0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 1, 1, 1, 1]
    # Past the last file (the encoder's padding) samples stay as they are; one factor is apply_gain's.
    assert apply_gains(np.ones((1, 4), np.float32), 12, [4, 4, 6], (0.5, 0.25, 0.5))[0].tolist() == \
        [0.5, 0.5, 1, 1]
    assert np.array_equal(apply_gains(pcm, 0, [10], 0.5), apply_gain(pcm, 0.5))
    assert apply_gains(pcm[:, :0], 0, [4, 6], (0.5, 1.0)).shape == (2, 0)
    with pytest.raises(ValueError):
        apply_gains(pcm, 0, [4, 6], (0.5,))
