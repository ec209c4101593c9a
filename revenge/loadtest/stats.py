"""Latency summaries (pure): percentiles by linear interpolation between order statistics, the
definition numpy and most dashboards use by default."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``ordered`` (sorted ascending, not empty)."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0..100")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Milliseconds (``count`` is a count); all zero when there were no samples."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Summary:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ms = [s * 1000.0 for s in ordered]
        return cls(len(ms), sum(ms) / len(ms), percentile(ms, 50), percentile(ms, 95), percentile(ms, 99),
                   ms[-1])

    def as_json(self) -> dict[str, Any]:
        return {k: (v if k == "count" else round(v, 3)) for k, v in asdict(self).items()}
