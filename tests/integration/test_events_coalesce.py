"""Progress events through the real service and embedded log: coalesced per (user, item, device), the
newest always delivered, urgent ones at once, nothing kept for a user nobody listens to, and a
reconnect within the backlog still replays what it missed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import orjson
import pytest

from revenge.playback.event_hub import EventHub
from revenge.playback.event_log import MemoryEventLog, now_ms
from revenge.playback.event_service import EventService
from revenge.progress.model import ProgressEvent, ProgressState, ProgressUpdate
from tests.waits import until

pytestmark = pytest.mark.anyio

WINDOW_MS = 150


def service(window_ms: int = WINDOW_MS, clock: Callable[[], int] = now_ms) -> EventService:
    hub = EventHub()
    return EventService(MemoryEventLog(hub, 1000, 600_000, 660_000), hub, client_buffer=1000,
                        presence_seconds=60, recent_ms=86_400_000, progress_window_ms=window_ms,
                        clock=clock)


def applied(events: EventService, position_ms: int, event: ProgressEvent = "progress", item: str = "a",
            device: str = "laptop", user: str = "1") -> None:
    now = now_ms()
    update = ProgressUpdate(user, item, "track", 600_000, position_ms, event, device, now, now)
    events.progress_applied(update, ProgressState(user, item, "track", 600_000, position_ms=position_ms))


def positions(events: EventService, device: str = "phone", user: str = "1") -> list[tuple[str, int]]:
    subscriber = next(s for s in events.hub._by_user[user] if s.device_id == device)
    return [(orjson.loads(e.data)["item_id"], orjson.loads(e.data)["position_ms"])
            for e in subscriber.buffer if e.type == "progress"]


async def test_a_burst_is_its_first_and_its_newest_and_urgent_events_go_at_once() -> None:
    now = [1_000_000]  # the coalescer's clock, moved by hand; its windows are due when flushed
    events = service(clock=lambda: now[0])
    try:
        await events.open_stream("1", "phone", None)
        for position in range(0, 100_000, 1000):  # 100 updates within one window
            applied(events, position)
        applied(events, 5, item="b")  # another item is another key
        assert positions(events) == [("a", 0), ("b", 5)]
        now[0] += WINDOW_MS
        events._flush_due()
        assert positions(events)[-1] == ("a", 99_000)  # the newest, at the window's end
        applied(events, 99_500)  # within the window after the trailing send: held ...
        applied(events, 99_600, event="pause")  # ... and superseded by a pause that goes at once
        assert positions(events)[-1] == ("a", 99_600)
        now[0] += 2 * WINDOW_MS
        events._flush_due()
        assert [p for _, p in positions(events)].count(99_500) == 0
        assert events._progress.next_due() is None  # quiet keys forgotten: no timer keeps running
    finally:
        await events.close()


async def test_the_held_newest_goes_out_by_itself() -> None:
    events = service()
    try:
        await events.open_stream("1", "phone", None)
        applied(events, 0)
        applied(events, 1000)  # held (or, on a machine slower than the window, sent at once)
        await until(lambda: positions(events)[-1:] == [("a", 1000)], "the trailing newest")
    finally:
        await events.close()


async def test_with_window_zero_every_update_is_an_event() -> None:
    events = service(window_ms=0)
    try:
        await events.open_stream("1", "phone", None)
        for position in range(10):
            applied(events, position)
        assert [p for _, p in positions(events)] == list(range(10))
    finally:
        await events.close()


async def test_nothing_is_kept_for_a_user_nobody_listens_to_but_the_device_list_knows() -> None:
    events = service(window_ms=0)
    try:
        applied(events, 42_000, event="pause", user="2")  # paused: the listed position does not move on
        assert (await events.log.replay("2", None)).newest_id is None  # no event was even numbered
        [device] = await events.devices("2")
        assert (device["device_id"], device["item_id"], device["position_seconds"]) == ("laptop", "a", 42.0)
    finally:
        await events.close()


async def test_a_stream_that_dropped_replays_what_came_while_it_was_away() -> None:
    events = service(window_ms=0)
    try:
        opened = await events.open_stream("1", "phone", None)
        applied(events, 1000)
        [seen] = list(opened.subscriber.buffer)
        await events.close_stream(opened.subscriber)
        assert not events.hub.has_user("1")
        applied(events, 2000)  # nobody connected: the user is still listening (the backlog's time)
        again = await events.open_stream("1", "phone", seen.id)
        assert again.replay.missed is not None
        assert [orjson.loads(e.data)["position_ms"] for e in again.replay.missed] == [2000]
    finally:
        await events.close()


class CountingLog(MemoryEventLog):
    calls = 0

    async def mark_seen(self, devices: Mapping[str, set[str]], now: int) -> None:
        self.calls += 1
        await super().mark_seen(devices, now)


async def test_streams_opening_together_share_one_mark() -> None:
    hub = EventHub()
    log = CountingLog(hub, 1000, 600_000, 660_000)
    events = EventService(log, hub, client_buffer=10, presence_seconds=60, recent_ms=86_400_000)
    try:
        opened = await asyncio.gather(*(events.open_stream(str(n % 7), f"d{n}", None) for n in range(50)))
        assert log.calls == 1 and events.hub.count() == 50
        await asyncio.gather(*(events.close_stream(o.subscriber) for o in opened))
        assert log.calls == 2 and events.hub.count() == 0
    finally:
        await events.close()
