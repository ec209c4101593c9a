"""The largest load that passes (pure): grow geometrically until a trial fails, then bisect.

Each trial is expensive (a full load run), so the search asks as few as it can: doubling finds a
bracket [last pass, first fail] in log2(limit / start) trials, bisection narrows it to ``resolution``
(a fraction of the passing value) in a few more. A noisy machine can make a trial fail above a passing
one; the search reports the largest value it saw pass below the first failure, and every trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SearchResult:
    largest_pass: int | None  # None: even ``start`` failed
    smallest_fail: int | None  # None: ``maximum`` passed
    trials: list[tuple[int, bool]] = field(default_factory=list)  # in the order run


def search_limit(passes: Callable[[int], bool], start: int, maximum: int, resolution: float = 0.1,
                 growth: float = 2.0) -> SearchResult:
    if not 1 <= start <= maximum:
        raise ValueError("need 1 <= start <= maximum")
    if not 0 < resolution < 1 or growth <= 1:
        raise ValueError("resolution must be in (0, 1) and growth > 1")
    result = SearchResult(None, None)

    def trial(n: int) -> bool:
        ok = passes(n)
        result.trials.append((n, ok))
        return ok

    n = start
    while True:
        if trial(n):
            result.largest_pass = n
            if n == maximum:
                return result
            n = min(maximum, max(n + 1, int(n * growth)))
        else:
            result.smallest_fail = n
            break
    if result.largest_pass is None:
        return result
    low, high = result.largest_pass, result.smallest_fail
    while high - low > max(1, int(low * resolution)):
        mid = (low + high) // 2
        if trial(mid):
            low = result.largest_pass = mid
        else:
            high = result.smallest_fail = mid
    return result
