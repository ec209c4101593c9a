"""ReplayGain applied in the transcode: the linear factor a rendition's samples are scaled by.

Pure: the factor is a function of the item's tags and the requested mode only, so a segment stays a
pure function of (item, profile, factor) and its cache key can carry the factor. R128 gains (Opus)
are already converted to ReplayGain's reference when the tags are read (:mod:`revenge.library.tags`).

Peak protection: the gain is limited to ``-20·log10(peak)`` when the peak is tagged, so the tagged
peak never goes above full scale; without a peak the transcoder clamps samples instead.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from revenge.library.tags import Tags

GAIN_MODES = ("track", "album")
# A rendition's gain: one factor for the whole timeline, or one per file (an album with ``gain=track``:
# each track's own, applied to its part of the timeline).
Gain = float | tuple[float, ...]


def gain_db(tags: Tags | None, mode: str) -> float | None:
    """The gain to apply in dB (peak-limited), or None when the tags have none for ``mode``: album
    mode falls back to the track gain, track mode to the album gain."""
    if mode not in GAIN_MODES:
        raise ValueError(f"gain mode must be one of {GAIN_MODES}")
    if tags is None:
        return None
    track = (tags.rg_track_gain, tags.rg_track_peak)
    album = (tags.rg_album_gain, tags.rg_album_peak)
    for gain, peak in (album, track) if mode == "album" else (track, album):
        if gain is not None and math.isfinite(gain):
            if peak is not None and math.isfinite(peak) and peak > 0:
                gain = min(gain, -20.0 * math.log10(peak))
            return gain
    return None


def gain_factor(tags: Tags | None, mode: str | None) -> float:
    """The linear factor for ``mode`` (None: no gain) — 1.0 when there is nothing to apply."""
    if mode is None:
        return 1.0
    db = gain_db(tags, mode)
    return 1.0 if db is None or db == 0.0 else float(10.0 ** (db / 20.0))


def apply_gain(pcm: np.ndarray, factor: float) -> np.ndarray:
    """``pcm`` scaled by ``factor`` and clamped to full scale (float in [-1, 1], integers to their
    range): no sample wraps or goes past full scale whatever the tags say."""
    if factor == 1.0:
        return pcm
    if np.issubdtype(pcm.dtype, np.floating):
        return np.clip(pcm * np.float32(factor), -1.0, 1.0).astype(pcm.dtype, copy=False)
    info = np.iinfo(pcm.dtype)
    scaled = np.rint(pcm.astype(np.float64) * factor)
    return np.clip(scaled, info.min, info.max).astype(pcm.dtype)


def per_file(factors: Sequence[float]) -> Gain:
    """The rendition gain of per-file ``factors``: one float when they are all equal (so a uniform
    album gain shares the segments of a single factor, and all 1.0 the plain ones)."""
    if not factors:
        return 1.0
    first = factors[0]
    return float(first) if all(f == first for f in factors) else tuple(float(f) for f in factors)


def gain_name(gain: Gain) -> str:
    """What segment keys carry for ``gain`` ("" for none): the factor, or a digest of every file's
    (deterministic, short whatever the track count)."""
    if isinstance(gain, tuple):
        return "g" + hashlib.sha256(repr(gain).encode()).hexdigest()[:16]
    return "" if gain == 1.0 else repr(gain)


def apply_gains(pcm: np.ndarray, start: int, file_counts: Sequence[int], gain: Gain) -> np.ndarray:
    """``pcm`` (the timeline's samples from ``start`` on) with each file's factor applied to its own
    samples: a block spanning a join is scaled part by part."""
    if not isinstance(gain, tuple):
        return apply_gain(pcm, gain)
    if pcm.shape[-1] == 0:
        return pcm
    if len(gain) != len(file_counts):
        raise ValueError("one gain per file")
    stop = start + pcm.shape[-1]
    parts, offset = [], 0
    for factor, count in zip(gain, file_counts, strict=True):
        lo, hi = max(start, offset), min(stop, offset + count)
        if hi > lo:
            parts.append(apply_gain(pcm[..., lo - start : hi - start], factor))
        offset += count
    covered = sum(p.shape[-1] for p in parts)
    if covered < pcm.shape[-1]:  # past the last file (the encoder's padding): as it is
        parts.append(pcm[..., covered:])
    return np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
