"""The Dragonfly/Redis play-queue store: one hash per user, ``rv:{<user>}:queue`` (``version``, ``data``:
the queue as JSON), written by a compare-and-set Lua script (``lua/queue_put.lua``) with its key in
KEYS. Failures to reach or write the server are ``StoreUnavailable`` (``revenge.redis_scripts``)."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from revenge.playback import queue as rules
from revenge.playback.queue import Queue
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HGET": 1, "HSET": 1})


def queue_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:queue"


class RedisQueueStore:
    """``QueueStore`` on Dragonfly or any Redis-protocol server; see the module docstring."""

    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard)
                   for name in ("queue_put", "queue_restore")]
        self._redis = ScriptedRedis(url, timeout_seconds, "queue", scripts, log)

    @property
    def redis(self) -> ScriptedRedis:
        return self._redis

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def ping(self) -> None:
        await self._redis.ping()

    async def get(self, user_id: str) -> Queue:
        try:
            data = await self._redis.client().hget(queue_key(user_id), "data")
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return rules.EMPTY if data is None else rules.decode(data)

    async def put(self, user_id: str, queue: Queue, base_version: int) -> Queue | None:
        args = (str(base_version), str(queue.version), rules.encode(queue).decode())
        reply = await self._redis.evalsha("queue_put", (queue_key(user_id),), args)
        if int(reply[0]) == 1:
            return None
        stored = reply[1] if len(reply) > 1 else None
        return rules.EMPTY if stored is None else rules.decode(stored)

    async def restore(self, user_id: str, queue: Queue) -> None:
        """Write ``queue`` unless the stored version is as new (a journal replay:
        ``revenge.playback.journaled``)."""
        await self._redis.evalsha("queue_restore", (queue_key(user_id),),
                                  (str(queue.version), rules.encode(queue).decode()))
