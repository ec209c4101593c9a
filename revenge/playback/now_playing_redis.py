"""Now playing in Dragonfly/Redis, shared by every instance: ``rv:{<user>}:now-playing`` (player →
``"<until ms> <json>"``), written by ``lua/now_playing_report.lua`` (its key in KEYS; it expires with
its last entry, at most ``MAX_PLAYERS`` a user), and ``rv:now-playing``, the server's index of who is
playing (a sorted set: user id → when their last entry ends, ms), the one key not under a user's hash
tag: trimmed of ended users on every write and read, and to ``MAX_USERS``."""

from __future__ import annotations

import logging

import orjson
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from revenge.playback.now_playing import Playing, newest_first, until_of
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HSET": 1, "HGETALL": 1, "HDEL": 1, "PEXPIREAT": 1})
INDEX_KEY = "rv:now-playing"
MAX_PLAYERS = 8  # per user
MAX_USERS = 1000  # in the index (the ones playing longest kept)
BATCH = 500  # HGETALLs per pipeline


def user_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:now-playing"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisNowPlaying:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", "now_playing_report", guard)]
        self._redis = ScriptedRedis(url, timeout_seconds, "now playing", scripts, log)

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def report(self, user_id: str, user_name: str, player: str, item_id: str, now: float,
                     duration: float | None = None) -> None:
        entry = orjson.dumps({"user_name": user_name, "item_id": item_id, "since": now}).decode()
        latest = await self._redis.evalsha("now_playing_report", (user_key(user_id),), (
            player, str(_ms(until_of(now, duration))), entry, str(_ms(now)), str(MAX_PLAYERS)))
        try:
            pipe = self._redis.client().pipeline(transaction=False)
            pipe.zadd(INDEX_KEY, {user_id: int(latest)}, gt=True)  # another instance's later end stays
            self._trim(pipe, now)
            await pipe.execute()
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

    @staticmethod
    def _trim(pipe: Pipeline, now: float) -> None:
        pipe.zremrangebyscore(INDEX_KEY, "-inf", f"({_ms(now)}")
        pipe.zremrangebyrank(INDEX_KEY, 0, -(MAX_USERS + 1))

    async def current(self, now: float) -> list[Playing]:
        found: list[Playing] = []
        try:
            pipe = self._redis.client().pipeline(transaction=False)
            self._trim(pipe, now)
            pipe.zrange(INDEX_KEY, 0, MAX_USERS - 1)
            users = [reply_text(u) for u in (await pipe.execute())[-1]]
            for start in range(0, len(users), BATCH):
                batch = users[start:start + BATCH]
                pipe = self._redis.client().pipeline(transaction=False)
                for user_id in batch:
                    pipe.hgetall(user_key(user_id))
                for user_id, entries in zip(batch, await pipe.execute(), strict=True):
                    found.extend(_entries(user_id, entries, now))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return newest_first(found)


def _entries(user_id: str, raw: dict[bytes, bytes], now: float) -> list[Playing]:
    entries = []
    for player, value in raw.items():
        ends, _, data = reply_text(value).partition(" ")
        until = int(ends) / 1000
        if until < now:
            continue  # ended, not yet dropped by a write
        body = orjson.loads(data)
        entries.append(Playing(user_id, body["user_name"], reply_text(player), body["item_id"], body["since"],
                               until))
    return entries
