"""A stalled event client (its socket takes no more bytes: ``send`` does not return) against the real
hub, log and stream writer: the others get every event, publishing never waits, and the stalled one is
told to resync and ended, or let go when it takes nothing at all. (A full socket buffer over real HTTP
takes megabytes on loopback; ``send`` that blocks is what uvicorn's flow control does then.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from revenge.playback.event_hub import EventHub
from revenge.playback.event_log import MemoryEventLog
from revenge.playback.event_service import EventService
from revenge.web.routes_events import EventStream
from tests.waits import until

pytestmark = pytest.mark.anyio


def service() -> EventService:
    hub = EventHub()
    return EventService(MemoryEventLog(hub, 1000, 600_000, 660_000), hub, client_buffer=8,
                        presence_seconds=60, recent_ms=86_400_000)


async def never_disconnects() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class Client:
    def __init__(self, stall_after: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.stall_after = stall_after
        self.release = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if self.stall_after is not None and len(self.bodies) >= self.stall_after:
            await self.release.wait()  # the socket is full
        self.bodies.append(message["body"])
        self.ended = not message.get("more_body", False)

    def text(self) -> bytes:
        return b"".join(self.bodies)


async def run_stream(events: EventService, device: str, client: Client,
                     send_timeout: float = 30.0) -> asyncio.Task[None]:
    opened = await events.open_stream("1", device, None)
    response = EventStream(events, opened, None, heartbeat_seconds=30, send_timeout=send_timeout)
    return asyncio.create_task(response({"type": "http"}, never_disconnects, client.send))  # type: ignore[arg-type]


async def test_a_stalled_client_gets_resync_and_ends_while_the_others_get_everything() -> None:
    events = service()
    fast, stalled = Client(), Client(stall_after=2)
    fast_task = await run_stream(events, "phone", fast)
    stalled_task = await run_stream(events, "speaker", stalled)
    await until(lambda: len(stalled.bodies) == 1 and len(fast.bodies) == 1, "both streams to open")
    for n in range(50):
        events.emit("1", "progress", {"n": n}, origin="laptop")  # returns at once, every time
        await asyncio.sleep(0)
    await until(lambda: fast.text().count(b"event: progress") == 50, "the fast client to get all 50")
    subscriber = next(s for s in events.hub._by_user["1"] if s.device_id == "speaker")
    assert subscriber.overflowed and not subscriber.buffer  # its buffer was dropped, not grown
    stalled.release.set()  # the socket drains: the hint goes out, then the end
    await asyncio.wait_for(stalled_task, 10)
    assert stalled.text().endswith(b"event: resync\ndata: {\"reason\":\"too_slow\"}\n\n") or \
        b'"reason":"too_slow"' in stalled.bodies[-2]
    assert stalled.ended and stalled.text().count(b"event: progress") < 50
    assert events.hub.devices_of("1") == {"phone"}  # the stalled stream left the hub
    assert not fast_task.done()
    fast_task.cancel()


async def test_a_client_that_takes_nothing_is_let_go() -> None:
    events = service()
    stalled = Client(stall_after=1)
    task = await run_stream(events, "speaker", stalled, send_timeout=0.2)
    events.emit("1", "progress", {"n": 1}, origin="laptop")
    await asyncio.wait_for(task, 10)  # ended by the send timeout, not by the client
    assert events.hub.count() == 0
