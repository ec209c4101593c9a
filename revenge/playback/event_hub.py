"""The event streams open on this instance, by user, and the fan-out to them.

Each stream is a :class:`Subscriber` with a bounded buffer. Delivering never waits: an event goes into
each buffer (``deque.append``) and wakes the stream's writer. A client that does not read fast enough
fills its buffer; then its buffer is dropped, it is marked ``overflowed``, and its writer sends a
``resync`` hint and ends the stream, so one stalled client costs others and the writer nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque

from revenge.playback.events import Event, EventId, parse_event_id


class Subscriber:
    __slots__ = (
        "_last",
        "_waiter",
        "buffer",
        "capacity",
        "closed",
        "device_id",
        "newest_id",
        "overflowed",
        "user_id",
    )

    def __init__(self, user_id: str, device_id: str, capacity: int) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.capacity = capacity
        self.buffer: deque[Event] = deque()
        self.overflowed = False
        self.closed = False
        self.newest_id: str | None = None  # the newest event id offered (the resync hint's id)
        self._last: EventId | None = None  # events up to this id were delivered (or replayed) already
        self._waiter: asyncio.Future[None] | None = None

    def seen_up_to(self, event_id: str | None) -> None:
        """Events up to ``event_id`` reached the client (replayed): skip them when they arrive live."""
        parsed = parse_event_id(event_id)
        if parsed is None:
            return
        if self._last is None or parsed > self._last:
            self._last = parsed
            self.newest_id = event_id
        # Live events that arrived while the backlog was read, and that it held too.
        kept = [e for e in self.buffer if (p := parse_event_id(e.id)) is not None and p > parsed]
        if len(kept) != len(self.buffer):
            self.buffer = deque(kept)

    def offer(self, event: Event) -> None:
        if self.closed or self.overflowed:
            return
        parsed = parse_event_id(event.id)
        if parsed is None or (self._last is not None and parsed <= self._last):
            return
        self._last = parsed
        self.newest_id = event.id
        if not event.for_device(self.device_id):
            return
        if len(self.buffer) >= self.capacity:
            self.buffer.clear()
            self.overflowed = True
        else:
            self.buffer.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, at_most: float) -> None:
        """Until there is something to send (events, overflow, close), at most ``at_most`` seconds."""
        if self.buffer or self.overflowed or self.closed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(at_most):
                await self._waiter
        except TimeoutError:
            pass
        finally:
            self._waiter = None


class EventHub:
    def __init__(self) -> None:
        self._by_user: dict[str, set[Subscriber]] = {}

    def add(self, subscriber: Subscriber) -> None:
        self._by_user.setdefault(subscriber.user_id, set()).add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        subs = self._by_user.get(subscriber.user_id)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._by_user[subscriber.user_id]

    def deliver(self, user_id: str, event: Event) -> None:
        for subscriber in self._by_user.get(user_id, ()):
            subscriber.offer(event)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._by_user

    def devices_of(self, user_id: str) -> set[str]:
        return {s.device_id for s in self._by_user.get(user_id, ())}

    def connected(self) -> dict[str, set[str]]:
        """user id → the devices with a stream open here."""
        return {user: {s.device_id for s in subs} for user, subs in self._by_user.items()}

    def resync_all(self, user_id: str | None = None) -> None:
        """Every stream here (of ``user_id``) may have missed events (the shared store was unreachable):
        tell each to resync and end."""
        groups = self._by_user.values() if user_id is None else [self._by_user.get(user_id, set())]
        for subs in groups:
            for subscriber in subs:
                subscriber.buffer.clear()
                subscriber.overflowed = True
                subscriber._wake()

    def count(self) -> int:
        return sum(len(s) for s in self._by_user.values())
