"""Where events are numbered, kept for replay and fanned out: the contract and the embedded log (this
process only). The Redis-protocol log is ``event_log_redis``; ``event_service.open_event_log`` picks.

``publish`` never waits and never raises: the change an event reports is acknowledged already (durable
in its own store), and an event that cannot be published makes the streams that may have missed it
resync, which re-reads that state.

``mark_seen`` notes devices with a stream open and makes their users *listening* for
``listening_ttl_ms`` (longer than the backlog holds events). Events of a user who is not listening are
not kept or sent, only what the device now plays is noted: nobody could be told them, and a stream
reconnecting after that long gets ``resync`` anyway.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from revenge.playback.devices import PLAYING_PREFIX, SEEN_PREFIX, Playing
from revenge.playback.event_hub import EventHub
from revenge.playback.events import Event, EventId, format_event_id, next_event_id, replay_after


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    user_id: str
    type: str
    data: bytes
    origin: str = ""
    target: str = ""
    playing: tuple[str, Playing] | None = None  # (device, what it now plays)


@dataclass(frozen=True, slots=True)
class Replay:
    missed: list[Event] | None  # None: cannot be told, the client must resync
    newest_id: str | None  # the id of the user's newest event (a resync's id)


class EventLog(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def publish(self, event: Outgoing) -> None: ...

    async def replay(self, user_id: str, last_event_id: str | None) -> Replay: ...

    async def device_fields(self, user_id: str) -> Mapping[str, str | bytes]: ...

    async def mark_seen(self, devices: Mapping[str, set[str]], now: int) -> None: ...


@dataclass
class _UserLog:
    backlog: deque[Event] = field(default_factory=deque)
    last: EventId | None = None
    fields: dict[str, str] = field(default_factory=dict)


class MemoryEventLog:
    """The embedded store's log: per user, the last ``backlog`` events of the last ``backlog_ms``."""

    def __init__(self, hub: EventHub, backlog: int, backlog_ms: int, listening_ttl_ms: int,
                 clock: Callable[[], int] = now_ms) -> None:
        self._hub = hub
        self._max = backlog
        self._max_ms = backlog_ms
        self._listening_ttl_ms = listening_ttl_ms
        self._clock = clock
        self._users: dict[str, _UserLog] = {}
        self._listening_until: dict[str, int] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _prune(self, log: _UserLog, now: int) -> None:
        backlog = log.backlog
        while len(backlog) > self._max:
            backlog.popleft()
        cutoff = now - self._max_ms
        while backlog and int(backlog[0].id.split("-", 1)[0]) < cutoff:
            backlog.popleft()

    def _listening(self, user_id: str, now: int) -> bool:
        if self._hub.has_user(user_id):
            return True
        until = self._listening_until.get(user_id)
        if until is not None and until < now:
            del self._listening_until[user_id]
            until = None
        return until is not None

    def publish(self, event: Outgoing) -> None:
        log = self._users.setdefault(event.user_id, _UserLog())
        now = self._clock()
        if event.playing is not None:
            device, playing = event.playing
            log.fields[PLAYING_PREFIX + device] = playing.encode()
        if not self._listening(event.user_id, now):
            return
        log.last = next_event_id(log.last, now)
        stored = Event(format_event_id(log.last), event.type, event.data, event.origin, event.target)
        log.backlog.append(stored)
        self._prune(log, now)
        self._hub.deliver(event.user_id, stored)

    async def replay(self, user_id: str, last_event_id: str | None) -> Replay:
        log = self._users.get(user_id)
        if log is None:
            return Replay(None if last_event_id is not None else [], None)
        self._prune(log, self._clock())
        newest = None if log.last is None else format_event_id(log.last)
        if last_event_id is None:
            return Replay([], newest)
        return Replay(replay_after(last_event_id, log.backlog), newest)

    async def device_fields(self, user_id: str) -> Mapping[str, str | bytes]:
        log = self._users.get(user_id)
        return {} if log is None else dict(log.fields)

    async def mark_seen(self, devices: Mapping[str, set[str]], now: int) -> None:
        for user_id, ids in devices.items():
            self._listening_until[user_id] = now + self._listening_ttl_ms
            fields = self._users.setdefault(user_id, _UserLog()).fields
            for device_id in ids:
                fields[SEEN_PREFIX + device_id] = str(now)
