"""The event log on Dragonfly/Redis: events fan out across instances.

* Each user's events are a stream, ``rv:{<user>}:events`` (its backlog: ``XADD … MAXLEN ~ N``, the id
  Redis gives an entry is the event id), what each device plays a hash, ``rv:{<user>}:devices``. One
  Lua script (``lua/events_add.lua``, both keys in KEYS) appends, notes and ``PUBLISH``es the event on
  one channel, so the channel carries a user's events in id order.
* One publisher task per instance sends the events in pipelines (``transaction=False``, at most
  ``PUBLISH_BATCH`` calls), in the order they were published. While the server is unreachable it keeps
  them (up to ``PENDING_MAX``) and retries: they arrive late, not never. Past that bound an event is
  dropped, and when the server answers again the user gets a stored ``resync`` event instead, so every
  stream that could have missed it (live or replaying) is told to re-read the state.
* A user with no stream open on any instance for longer than the backlog holds events is not
  listening (``rv:{<user>}:listening`` has expired: every instance renews it for its streams): the
  script only notes what the device plays, with nothing appended or published.
* One reader task per instance (not per stream) holds the subscription and hands each event to the
  local hub (decoded only for users with a stream here). When its connection breaks, every local
  stream may have missed events: each gets ``resync`` and ends; until the reader is back, new
  streams are refused (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from revenge.errors import StoreUnavailable
from revenge.playback.devices import PLAYING_PREFIX, SEEN_PREFIX
from revenge.playback.event_hub import EventHub
from revenge.playback.event_log import Outgoing, Replay, now_ms
from revenge.playback.events import RESYNC, Event, decode_event, encode_body, parse_event_id, replay_after
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.events")

CHANNEL = "rv:events"
PUBLISH_BATCH = 128
PENDING_MAX = 10_000
SEEN_BATCH = 500
RETRY_SECONDS = 0.2
_KEY_GUARD = key_guard_lua({"XADD": 1, "PEXPIRE": 1, "HSET": 1, "EXISTS": 1, "PUBLISH": 0})


def events_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:events"


def devices_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:devices"


def listening_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:listening"


def parse_message(data: bytes, wanted: Callable[[str], bool]) -> tuple[str, Event] | None:
    """A channel message ``<user>\\n<id>\\n<body>`` as (user id, event); None when damaged or not for
    a ``wanted`` user (one nobody here listens to is not decoded)."""
    try:
        user_id, event_id, body = data.split(b"\n", 2)
        user = user_id.decode()
        if not wanted(user):
            return None
        return user, decode_event(event_id.decode(), body)
    except (ValueError, KeyError, TypeError):
        return None


class RedisEventLog:
    def __init__(self, url: str, timeout_seconds: float, hub: EventHub, backlog: int, backlog_ms: int,
                 devices_ttl_ms: int, listening_ttl_ms: int, *, key_guard: bool = False) -> None:
        script = LuaScript.packaged("revenge.playback", "events_add", _KEY_GUARD if key_guard else "")
        self._redis = ScriptedRedis(url, timeout_seconds, "events", [script], log)
        self._url = url
        self._timeout = timeout_seconds
        self._hub = hub
        self._max = backlog
        self._max_ms = backlog_ms
        self._devices_ttl_ms = devices_ttl_ms
        self._listening_ttl_ms = listening_ttl_ms
        self._pending: deque[Outgoing] = deque()
        self._gaps: set[str] = set()  # users whose events were dropped: a stored resync is owed
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self.reader_live = False

    async def open(self) -> None:
        await self._redis.open()
        self._tasks = [asyncio.create_task(self._publish_forever(), name="events-publisher"),
                       asyncio.create_task(self._read_forever(), name="events-reader")]
        # Streams open only once the reader listens (else their first events could pass unseen).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout * 2):
                await self._subscribed.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._redis.close()

    # --- publishing ----------------------------------------------------------------------------------

    def publish(self, event: Outgoing) -> None:
        if len(self._pending) >= PENDING_MAX:
            if event.user_id not in self._gaps:
                log.error("events: %d events wait for the store; dropping user %s's (it will resync)",
                          PENDING_MAX, event.user_id)
            self._gaps.add(event.user_id)
            self._hub.resync_all(event.user_id)
            return
        self._pending.append(event)
        self._wake.set()

    def _call(self, event: Outgoing) -> tuple[str, tuple[str, str], tuple[str, ...]]:
        field, value = "", ""
        if event.playing is not None:
            field, value = PLAYING_PREFIX + event.playing[0], event.playing[1].encode()
        body = encode_body(event.type, event.data, event.origin, event.target).decode()
        args = (str(self._max), str(self._max_ms), CHANNEL, event.user_id, body, field, value,
                str(self._devices_ttl_ms))
        user = event.user_id
        return "events_add", (events_key(user), devices_key(user), listening_key(user)), args

    async def _publish_forever(self) -> None:
        failing = False
        while True:
            if not self._pending and not self._gaps:
                self._wake.clear()
                await self._wake.wait()
            owed = [Outgoing(user_id, RESYNC, b"{}") for user_id in sorted(self._gaps)[:PUBLISH_BATCH]]
            batch = owed + list(self._pending)[:PUBLISH_BATCH - len(owed)]
            try:
                await self._redis.eval_pipeline([self._call(e) for e in batch])
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("events: cannot publish (%s); retrying", exc)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except Exception:
                log.exception("events: publishing failed; dropping a batch (its users resync)")
                self._gaps.update(e.user_id for e in batch if e.type != RESYNC)
                for e in batch:
                    self._hub.resync_all(e.user_id)
            if failing:
                log.warning("events: publishing again")
                failing = False
            for e in owed:
                self._gaps.discard(e.user_id)
            for _ in range(len(batch) - len(owed)):
                self._pending.popleft()

    # --- the reader ----------------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=self._timeout)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.reader_live = True
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None or message.get("type") != "message":
                        continue
                    parsed = parse_message(message["data"], self._hub.has_user)
                    if parsed is not None:
                        self._hub.deliver(*parsed)
            except (RedisError, OSError) as exc:
                if self.reader_live:
                    log.warning("events: the subscription broke (%s): local streams resync", exc)
                self.reader_live = False
                self._hub.resync_all()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RETRY_SECONDS)

    # --- replay and devices --------------------------------------------------------------------------

    async def replay(self, user_id: str, last_event_id: str | None) -> Replay:
        if not self.reader_live:
            raise StoreUnavailable("events: the store's subscription is down")
        if last_event_id is None:  # a fresh stream: nothing to read (reconnect storms cost no round trip)
            return Replay([], None)
        key = events_key(user_id)
        parsed = parse_event_id(last_event_id)
        count = self._max + 1000  # an approximate trim keeps somewhat more than the bound
        try:
            pipe = self._redis.client().pipeline(transaction=False)
            pipe.xrevrange(key, "+", "-", count=1)
            if parsed is not None and last_event_id is not None:
                pipe.xrange(key, last_event_id, "+", count=count)
            replies = await pipe.execute()
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        newest = reply_text(replies[0][0][0]) if replies[0] else None
        if last_event_id is None:
            return Replay([], newest)
        if parsed is None or parsed[0] < now_ms() - self._max_ms or len(replies[1]) >= count:
            return Replay(None, newest)
        backlog = [decode_event(reply_text(entry_id), fields[b"e"]) for entry_id, fields in replies[1]]
        return Replay(replay_after(last_event_id, backlog), newest)

    async def device_fields(self, user_id: str) -> Mapping[str, str | bytes]:
        try:
            raw = await self._redis.client().hgetall(devices_key(user_id))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return {reply_text(k): v for k, v in raw.items()}

    async def mark_seen(self, devices: Mapping[str, set[str]], now: int) -> None:
        pairs = [(user_id, device_id) for user_id, ids in devices.items() for device_id in ids]
        for start in range(0, len(pairs), SEEN_BATCH):
            try:
                pipe = self._redis.client().pipeline(transaction=False)
                for user_id, device_id in pairs[start:start + SEEN_BATCH]:
                    pipe.hset(devices_key(user_id), SEEN_PREFIX + device_id, str(now))
                    pipe.pexpire(devices_key(user_id), self._devices_ttl_ms)
                    pipe.set(listening_key(user_id), b"1", px=self._listening_ttl_ms)
                await pipe.execute()
            except RedisError as exc:
                raise self._redis.unavailable(exc) from exc
