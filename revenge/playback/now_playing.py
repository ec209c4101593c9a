"""Who is playing what right now, as players report it (Subsonic's ``scrobble submission=false``):
one entry per (user, player), forgotten after the track's length (or ``ttl`` without one). Bounded."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Playing:
    user_id: str
    user_name: str
    player: str
    item_id: str
    since: float
    until: float


class NowPlaying:
    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[tuple[str, str], Playing] = OrderedDict()

    def report(self, user_id: str, user_name: str, player: str, item_id: str, now: float,
               duration: float | None = None) -> None:
        key = (user_id, player)
        self._entries.pop(key, None)
        self._entries[key] = Playing(user_id, user_name, player, item_id, now,
                                     now + (duration if duration and duration > 0 else self.ttl))
        while len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)

    def current(self, now: float) -> list[Playing]:
        """Entries still playing, newest first."""
        for key in [k for k, p in self._entries.items() if p.until < now]:
            del self._entries[key]
        return sorted(self._entries.values(), key=lambda p: -p.since)
