"""``EventService``: what the user's devices are told, and remote control.

Hooks (wired by ``create_app``) turn acknowledged changes into events: a progress update applied
(``ProgressService.on_applied``), a queue change (``QueueService.on_change``), a playback session
started or stopped (``SessionService.on_start`` / ``on_end``). A command to a device is an event for
that device only. The log (``event_log``: in memory, or Redis Streams across instances) numbers them,
keeps a bounded backlog per user and fans them out; streams are the hub's subscribers.

Every event also notes what the device that caused it now plays: that is the device list
(``devices.device_list``), with the devices whose stream is open (marked seen every
``presence_seconds`` by this instance for its own streams).

Progress events are coalesced per (user, item, device) over ``progress_window_ms``
(``coalesce.Coalescer``): a device that reports its position many times a second (or replays an
offline backlog) makes one event at once and then the newest once per window; a pause, seek or stop
goes out at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from revenge.errors import StoreUnavailable
from revenge.playback import devices as device_rules
from revenge.playback.coalesce import Coalescer
from revenge.playback.devices import Command, Playing
from revenge.playback.event_hub import EventHub, Subscriber
from revenge.playback.event_log import EventLog, MemoryEventLog, Outgoing, Replay, now_ms
from revenge.playback.event_log_redis import RedisEventLog
from revenge.playback.events import Event

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.playback.sessions import EndReason, Session
    from revenge.progress.model import ProgressState, ProgressUpdate

log = logging.getLogger("revenge.events")

DurationOf = Callable[[str], int]  # item id → duration in ms (0: unknown)
QUEUE_ITEMS_IN_EVENT = 500  # a longer queue's event carries no entries: the device GETs the queue


def presence_seconds(settings: Settings) -> float:
    """How often each instance marks its open streams seen (and their users listening)."""
    return max(settings.events_heartbeat_seconds, 1.0)


def listening_ttl_ms(settings: Settings) -> int:
    """How long a user stays *listening* after their last stream was marked: the backlog's time, plus
    two presence rounds for an instance that died before it could mark its streams closed. A client
    whose last event is still in the backlog was connected within it, so nothing it could ask to
    replay was skipped."""
    return round((settings.events_backlog_seconds + 2 * presence_seconds(settings)) * 1000) + 1000


def open_event_log(settings: Settings, hub: EventHub) -> EventLog:
    """In memory with the embedded store; across instances on a Redis-protocol one."""
    backlog_ms = round(settings.events_backlog_seconds * 1000)
    if settings.store == "sqlite":
        return MemoryEventLog(hub, settings.events_backlog, backlog_ms, listening_ttl_ms(settings))
    return RedisEventLog(settings.store, settings.store_timeout_seconds, hub, settings.events_backlog,
                         backlog_ms, settings.devices_recent_seconds * 1000, listening_ttl_ms(settings))


class UnknownDevice(LookupError):
    def __init__(self, device_id: str, field: str) -> None:
        super().__init__(f"no device {device_id!r} seen recently")
        self.device_id = device_id
        self.field = field


class NothingPlaying(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Opened:
    subscriber: Subscriber
    replay: Replay


class EventService:
    def __init__(self, log_: EventLog, hub: EventHub, *, client_buffer: int, presence_seconds: float,
                 recent_ms: int, duration_of: DurationOf | None = None, progress_window_ms: int = 0,
                 clock: Callable[[], int] = now_ms) -> None:
        self.log = log_
        self.hub = hub
        self.client_buffer = client_buffer
        self.presence_seconds = presence_seconds
        self.recent_ms = recent_ms
        self._duration_of = duration_of
        self._clock = clock
        self._presence: asyncio.Task[None] | None = None
        self._progress: Coalescer[tuple[str, str, str], tuple[ProgressUpdate, ProgressState]] = \
            Coalescer(progress_window_ms)
        self._flush: asyncio.TimerHandle | None = None
        # Streams opening or closing together (a reconnect storm) share one mark_seen round trip.
        self._marks: dict[str, set[str]] = {}
        self._marked: asyncio.Future[None] | None = None
        self._marking: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, settings: Settings, duration_of: DurationOf | None = None) -> EventService:
        hub = EventHub()
        event_log = open_event_log(settings, hub)
        await event_log.open()
        service = cls(event_log, hub, client_buffer=settings.events_client_buffer,
                      presence_seconds=presence_seconds(settings),
                      recent_ms=settings.devices_recent_seconds * 1000, duration_of=duration_of,
                      progress_window_ms=settings.events_progress_window_ms)
        service._presence = asyncio.create_task(service._presence_forever(), name="events-presence")
        return service

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        task, self._presence = self._presence, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*self._marking, return_exceptions=True)
        await self.log.close()

    # --- events from the hooks (never raise, never wait) ----------------------------------------------

    def emit(self, user_id: str, type_: str, payload: dict[str, Any], origin: str = "", target: str = "",
             playing: Playing | None = None) -> None:
        try:
            self.log.publish(Outgoing(user_id, type_, orjson.dumps(payload), origin, target,
                                      None if playing is None or not origin else (origin, playing)))
        except Exception:
            log.exception("events: could not publish a %s event", type_)

    def progress_applied(self, update: ProgressUpdate, state: ProgressState) -> None:
        urgent = update.event != "progress"  # start, pause, seek, stop: the other devices show it now
        key = (update.user_id, update.item_id, update.device_id)
        if self._progress.offer(key, (update, state), self._clock(), urgent):
            self._progress_event(update, state)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush is not None:
            return
        due = self._progress.next_due()
        if due is not None:
            delay = max(0, due - self._clock()) / 1000
            self._flush = asyncio.get_running_loop().call_later(delay, self._flush_due)

    def _flush_due(self) -> None:
        self._flush = None
        for update, state in self._progress.due(self._clock()):
            self._progress_event(update, state)
        self._schedule_flush()

    def _progress_event(self, update: ProgressUpdate, state: ProgressState) -> None:
        payload = {
            "item_id": state.item_id, "item_type": state.item_type, "device_id": update.device_id,
            "event": update.event, "position_seconds": state.position_ms / 1000.0,
            "position_ms": state.position_ms, "duration_ms": state.duration_ms,
            "completed": state.completed, "play_count": state.play_count, "version": state.version,
            "playback_rate": state.playback_rate, "event_ts": state.event_ts_ms,
        }
        playing = Playing(update.item_id, update.position_ms, update.duration_ms,
                          device_rules.state_of_progress_event(update.event), update.received_ms,
                          update.playback_rate)
        self.emit(update.user_id, "progress", payload, update.device_id, playing=playing)

    def queue_changed(self, user_id: str, queue: dict[str, Any]) -> None:
        payload = dict(queue)
        payload["items_included"] = len(queue.get("items", ())) <= QUEUE_ITEMS_IN_EVENT
        if not payload["items_included"]:
            payload["items"] = None
            payload["history"] = None
        self.emit(user_id, "queue", payload, queue.get("changed_by") or "")

    def session_started(self, session: Session) -> None:
        duration = self._duration_of(session.item_id) if self._duration_of is not None else 0
        self.emit(session.user_id, "session", self._session_payload(session, "started", None),
                  session.device_id,
                  playing=Playing(session.item_id, session.position_ms, duration, "playing",
                                  session.last_active_ms))

    def session_ended(self, session: Session, reason: EndReason) -> None:
        if reason == "replaced":  # the device's new session says it
            return
        duration = self._duration_of(session.item_id) if self._duration_of is not None else 0
        self.emit(session.user_id, "session", self._session_payload(session, "stopped", reason),
                  session.device_id,
                  playing=Playing(session.item_id, session.position_ms, duration, "stopped", self._clock()))

    @staticmethod
    def _session_payload(session: Session, action: str, reason: str | None) -> dict[str, Any]:
        return {"action": action, "session_id": session.id, "device_id": session.device_id,
                "item_id": session.item_id, "position_seconds": session.position_ms / 1000.0,
                "state": session.state if action == "started" else "stopped", "reason": reason}

    # --- devices and commands -----------------------------------------------------------------------

    async def devices(self, user_id: str) -> list[dict[str, Any]]:
        fields = await self.log.device_fields(user_id)
        return device_rules.device_list(fields, self.hub.devices_of(user_id), self._clock(), self.recent_ms,
                                        round(self.presence_seconds * 2500))

    async def command(self, user_id: str, from_device: str, device_id: str, command: Command) -> None:
        """Send ``command`` to ``device_id``; ``UnknownDevice`` when the user has no such device seen
        recently. ``transfer``: the device is told to pause, ``to_device`` to play what it played, from
        where it is now (``NothingPlaying`` when it plays nothing)."""
        listed = {d["device_id"]: d for d in await self.devices(user_id)}
        if device_id not in listed:
            raise UnknownDevice(device_id, "device_id")
        payload = command.payload() | {"from_device": from_device}
        if command.to_device is None:
            self.emit(user_id, "command", payload, from_device, target=device_id)
            return
        if command.to_device not in listed:
            raise UnknownDevice(command.to_device, "to_device")
        source = listed[device_id]
        if source["item_id"] is None:
            raise NothingPlaying(f"device {device_id!r} is not playing anything to transfer")
        pause = {"command": "pause", "reason": "transfer", "to_device": command.to_device,
                 "from_device": from_device}
        self.emit(user_id, "command", pause, from_device, target=device_id)
        self.emit(user_id, "command", {"command": "transfer", "from_device": device_id,
                                       "item_id": source["item_id"],
                                       "position_seconds": source["position_seconds"],
                                       "state": "playing"}, from_device, target=command.to_device)

    # --- streams ------------------------------------------------------------------------------------

    async def open_stream(self, user_id: str, device_id: str, last_event_id: str | None) -> Opened:
        """A subscriber for the device's stream, with what it missed since ``last_event_id`` (or the
        resync verdict). Subscribed, and the user marked listening on every instance, before the
        backlog is read, so nothing falls between the two (``StoreUnavailable`` when it cannot be)."""
        subscriber = Subscriber(user_id, device_id, self.client_buffer)
        self.hub.add(subscriber)
        try:
            await self._mark_seen(user_id, device_id)
            replay = await self.log.replay(user_id, last_event_id)
        except BaseException:
            self.hub.remove(subscriber)
            raise
        if replay.missed is None:  # told to resync: what follows the newest event comes live
            subscriber.seen_up_to(replay.newest_id)
        elif last_event_id is not None:
            subscriber.seen_up_to(replay.missed[-1].id if replay.missed else last_event_id)
        return Opened(subscriber, replay)

    async def _mark_seen(self, user_id: str, device_id: str) -> None:
        """``mark_seen`` for one stream opening or closing, in one call with every other meanwhile."""
        self._marks.setdefault(user_id, set()).add(device_id)
        if self._marked is None:
            self._marked = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._send_marks)
        await asyncio.shield(self._marked)

    def _send_marks(self) -> None:
        marks, done = self._marks, self._marked
        self._marks, self._marked = {}, None
        assert done is not None

        async def send() -> None:
            try:
                await self.log.mark_seen(marks, self._clock())
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:  # each waiting stream fails with it (503)
                done.set_exception(exc)
                done.exception()  # retrieved: no "never retrieved" warning when nobody waits anymore
            else:
                done.set_result(None)

        task = asyncio.create_task(send(), name="events-marks")
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def close_stream(self, subscriber: Subscriber) -> None:
        subscriber.close()
        self.hub.remove(subscriber)
        with contextlib.suppress(StoreUnavailable):
            await self._mark_seen(subscriber.user_id, subscriber.device_id)

    def missed_for(self, subscriber: Subscriber, missed: list[Event]) -> list[Event]:
        return [e for e in missed if e.for_device(subscriber.device_id)]

    async def _presence_forever(self) -> None:
        while True:
            await asyncio.sleep(self.presence_seconds)
            connected = self.hub.connected()
            if not connected:
                continue
            try:
                await self.log.mark_seen(connected, self._clock())
            except StoreUnavailable as exc:
                log.warning("events: cannot note the open streams (%s)", exc)
            except Exception:
                log.exception("events: presence failed")
