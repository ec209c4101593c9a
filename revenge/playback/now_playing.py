"""Who is playing what right now, as players report it (Subsonic's ``scrobble submission=false``):
one entry per (user, player), forgotten after the track's length (or ``ttl`` without one). Bounded.
The store follows ``settings.store`` (``marks_store.open_now_playing``): in this process for the
embedded store, in Redis for a shared one (``now_playing_redis``), so every instance lists what any
one was told."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

TTL_SECONDS = 600.0  # an entry without a track length


@dataclass(frozen=True, slots=True)
class Playing:
    user_id: str
    user_name: str
    player: str
    item_id: str
    since: float
    until: float


def until_of(now: float, duration: float | None, ttl: float = TTL_SECONDS) -> float:
    return now + (duration if duration and duration > 0 else ttl)


def newest_first(entries: list[Playing]) -> list[Playing]:
    return sorted(entries, key=lambda p: (-p.since, p.user_id, p.player))


class NowPlayingStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def report(self, user_id: str, user_name: str, player: str, item_id: str, now: float,
                     duration: float | None = None) -> None:
        """``player`` of the user plays ``item_id`` from ``now`` (replacing what it played)."""
    async def current(self, now: float) -> list[Playing]:
        """Entries still playing at ``now``, newest first."""


class NowPlaying:
    """The embedded store: in this process."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[tuple[str, str], Playing] = OrderedDict()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def report(self, user_id: str, user_name: str, player: str, item_id: str, now: float,
                     duration: float | None = None) -> None:
        key = (user_id, player)
        self._entries.pop(key, None)
        until = until_of(now, duration, self.ttl)
        self._entries[key] = Playing(user_id, user_name, player, item_id, now, until)
        while len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)

    async def current(self, now: float) -> list[Playing]:
        for key in [k for k, p in self._entries.items() if p.until < now]:
            del self._entries[key]
        return newest_first(list(self._entries.values()))
