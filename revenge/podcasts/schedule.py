"""When to check a feed again, which new episodes to download, which downloads to drop. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

JITTER = 0.1  # ±10 % of the interval: feeds subscribed together drift apart instead of all checking at once
RETRY_FIRST_SECONDS = 60.0  # the first retry after a failed check, doubling per failure
RETRY_MAX_SECONDS = 86_400.0


def next_check(now: float, interval: float, failures: int, u: float) -> float:
    """When to check next. ``u`` is a uniform random number in [0, 1) (the caller's RNG: this stays pure).
    After ``failures`` consecutive failures: 60 s doubling per failure, up to a day."""
    if failures <= 0:
        delay = interval
    else:
        delay = min(RETRY_FIRST_SECONDS * 2 ** min(failures - 1, 30), RETRY_MAX_SECONDS)
    return now + delay * (1 + JITTER * (2 * u - 1))


def auto_download_off(failures: int, max_failures: int) -> str | None:
    """The reason auto-download is turned off after ``max_failures`` consecutive failed checks, or None."""
    if failures >= max_failures:
        return f"auto-download turned off after {failures} failed checks in a row"
    return None


@dataclass(frozen=True, slots=True)
class Dated:
    id: str
    published: float | None


def _newest_first(episodes: Sequence[Dated]) -> list[Dated]:
    # Undated episodes sort after every dated one, in feed order (the sort is stable).
    return sorted(episodes, key=lambda e: -(e.published if e.published is not None else float("-inf")))


def to_auto_download(episodes: Sequence[Dated], newest_known: float | None, limit: int) -> list[str]:
    """The ids of at most ``limit`` of the newest episodes published after ``newest_known`` (every dated
    episode when nothing was known yet: a new subscription downloads its newest ``limit``)."""
    if limit <= 0:
        return []
    fresh = [
        e
        for e in episodes
        if e.published is not None and (newest_known is None or e.published > newest_known)
    ]
    return [e.id for e in _newest_first(fresh)[:limit]]


def to_drop(downloaded: Sequence[Dated], keep_last: int) -> list[str]:
    """The ids of the downloaded episodes beyond the newest ``keep_last`` (0: keep them all)."""
    if keep_last <= 0:
        return []
    return [e.id for e in _newest_first(downloaded)[keep_last:]]
