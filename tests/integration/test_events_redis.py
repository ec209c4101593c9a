"""The Redis event log on a real redis-server with the key guard on (every key its script touches in
KEYS, as Dragonfly requires): ids from the stream, replay after an id, resync for one it no longer
holds, the device hash, delivery through the one reader, and nothing kept or sent for a user nobody
listens to."""

from __future__ import annotations

import pytest
import redis

from revenge.playback.devices import Playing
from revenge.playback.event_hub import EventHub, Subscriber
from revenge.playback.event_log import Outgoing
from revenge.playback.event_log_redis import RedisEventLog
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.waits import until

pytestmark = pytest.mark.anyio


async def test_publish_replay_devices_and_delivery(redis_server: RedisServer) -> None:  # noqa: F811
    hub = EventHub()
    log = RedisEventLog(redis_server.url, 2.0, hub, backlog=1000, backlog_ms=600_000,
                        devices_ttl_ms=86_400_000, listening_ttl_ms=60_000, key_guard=True)
    await log.open()
    raw = redis.Redis.from_url(redis_server.url)
    try:
        listener = Subscriber("7", "phone", capacity=100)
        hub.add(listener)
        # Before any instance marked a stream of user 7: what the device plays is noted, nothing else.
        log.publish(Outgoing("7", "progress", b'{"n":0}', "tv",
                             playing=("tv", Playing("early", 0, 60_000, "playing", 1))))
        await until(lambda: b"p:tv" in raw.hkeys("rv:{7}:devices"),
                    "the unheard event's device note")
        assert not raw.exists("rv:{7}:events") and not listener.buffer
        await log.mark_seen({"7": {"phone"}}, 41)
        assert 0 < raw.pttl("rv:{7}:listening") <= 60_000
        log.publish(Outgoing("7", "progress", b'{"n":1}', "laptop",
                             playing=("laptop", Playing("item", 1000, 60_000, "playing", 5))))
        log.publish(Outgoing("7", "queue", b'{"n":2}', "laptop"))
        log.publish(Outgoing("8", "queue", b'{"other":1}', "x"))
        await until(lambda: len(listener.buffer) == 2, "both events through the reader")
        first, second = listener.buffer
        assert (first.type, first.data, second.type) == ("progress", b'{"n":1}', "queue")
        missed = await log.replay("7", first.id)
        assert missed.missed is not None and [e.id for e in missed.missed] == [second.id]
        assert missed.newest_id == second.id
        assert (await log.replay("7", "1-0")).missed is None
        assert (await log.replay("7", None)).missed == []
        fields = await log.device_fields("7")
        assert Playing.decode(fields["p:laptop"]).item_id == "item"
        await log.mark_seen({"7": {"phone"}}, 42)
        assert (await log.device_fields("7"))["s:phone"] == b"42"
    finally:
        raw.close()
        await log.close()
