"""Failed logins, counted per key (a user name, an address): past ``max_failures`` within ``window``
seconds a key is refused until its oldest failure in the window ages out, so guessing a password
(Subsonic clients send one on every request) costs ``window / max_failures`` seconds a try.

Pure: the caller passes the time. Bounded: at most ``max_keys`` keys are tracked (the stalest go
first), so a flood of made-up names costs no more memory than a fixed table.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable


class LoginLimiter:
    def __init__(self, max_failures: int = 10, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, keys: Iterable[str], now: float) -> float | None:
        """Seconds until every key may try again; None when none is over its limit."""
        waits = [times[0] + self.window - now for key in keys
                 if (times := self._recent(key, now)) is not None and len(times) >= self.max_failures]
        return max(waits) if waits else None

    def failed(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.max_failures)
            self._failures.move_to_end(key)
            times.append(now)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """A good login clears the user's count (not the address's: one good account does not unlock
        guessing at others from there)."""
        self._failures.pop(key, None)
