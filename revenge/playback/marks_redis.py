"""Stars and ratings in Dragonfly/Redis: ``rv:{<user>}:stars`` (key → ms) and ``rv:{<user>}:ratings``
(key → 1..5), written by Lua scripts (``lua/marks_*.lua``) that hold the cap, their keys in KEYS.

Each star, unstar and rating change has a time, and the newest change of a key wins whatever the order
the writes arrive in: each starred key's star times since its last unstar (``…:stars:times``), each
key's last unstar (``…:stars:gone``, kept once unstarred: a tombstone) and last rating change
(``…:ratings:at``) are kept beside them, bounded, so that two instances' journals replayed after a
crash, in either order, end as the writes did (``revenge.playback.journaled``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from redis.exceptions import RedisError

from revenge.playback.marks import MAX_LOOKUP, MAX_MARKS, Marks, TooManyMarks, check_rating, read_whole
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HEXISTS": 1, "HLEN": 1, "HGET": 1, "HSET": 1, "HDEL": 1, "ZSCORE": 1,
                            "ZADD": 1, "ZREM": 1, "ZCARD": 1, "ZREMRANGEBYRANK": 1})
MAX_KEYS_PER_CALL = 500  # one script call: bounded work on the server
# Change times kept of keys without a mark (unstarred, rating removed): as many as a user may hold marks.
MAX_TOMBSTONES = MAX_MARKS
# Star times kept per starred key (stars of a key starred already, by several instances, replayed).
STAR_TIMES = 4


def stars_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:stars"


def ratings_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:ratings"


def star_keys(user_id: str) -> tuple[str, str, str]:
    """KEYS of marks_star.lua and marks_unstar.lua: the stars, their times, the last unstars."""
    return (stars_key(user_id), f"rv:{{{user_id}}}:stars:times", f"rv:{{{user_id}}}:stars:gone")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RedisMarkStore:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard)
                   for name in ("marks_star", "marks_unstar", "marks_rate")]
        self._redis = ScriptedRedis(url, timeout_seconds, "marks", scripts, log)

    @property
    def redis(self) -> ScriptedRedis:
        return self._redis

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def star(self, user_id: str, keys: Sequence[str], at_ms: int) -> None:
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_KEYS_PER_CALL):
            batch = unique[start:start + MAX_KEYS_PER_CALL]
            reply = await self._redis.evalsha("marks_star", star_keys(user_id),
                                              (str(MAX_MARKS), str(at_ms), str(STAR_TIMES), *batch))
            if int(reply) == 0:
                raise TooManyMarks(f"at most {MAX_MARKS} stars")

    async def unstar(self, user_id: str, keys: Sequence[str], at_ms: int | None = None) -> None:
        """At ``at_ms`` (now when not given)."""
        at = _now_ms() if at_ms is None else at_ms
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_KEYS_PER_CALL):
            batch = unique[start:start + MAX_KEYS_PER_CALL]
            await self._redis.evalsha("marks_unstar", star_keys(user_id),
                                      (str(at), str(MAX_TOMBSTONES), *batch))

    async def _all(self, key: str) -> dict[str, int]:
        try:
            found = await self._redis.client().hgetall(key)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return {reply_text(k): int(v) for k, v in found.items()}

    async def starred(self, user_id: str) -> dict[str, int]:
        found = await self._all(stars_key(user_id))
        return dict(sorted(found.items(), key=lambda kv: (kv[1], kv[0])))

    async def set_rating(self, user_id: str, key: str, rating: int, at_ms: int | None = None) -> None:
        """At ``at_ms`` (now when not given)."""
        check_rating(rating)
        at = _now_ms() if at_ms is None else at_ms
        keys = (ratings_key(user_id), f"rv:{{{user_id}}}:ratings:at")
        reply = await self._redis.evalsha("marks_rate", keys, (str(MAX_MARKS), key, str(rating), str(at),
                                                               str(MAX_MARKS + MAX_TOMBSTONES)))
        if int(reply) == 0:
            raise TooManyMarks(f"at most {MAX_MARKS} ratings")

    async def ratings(self, user_id: str) -> dict[str, int]:
        return await self._all(ratings_key(user_id))

    async def marks_of(self, user_id: str, keys: Sequence[str]) -> Marks:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return Marks()
        hashes = (stars_key(user_id), ratings_key(user_id))
        batches = [unique[start:start + MAX_LOOKUP] for start in range(0, len(unique), MAX_LOOKUP)]
        try:
            client = self._redis.client()
            pipe = client.pipeline(transaction=False)
            for key in hashes:
                pipe.hlen(key)
            whole = [read_whole(int(size), len(unique)) for size in await pipe.execute()]
            pipe = client.pipeline(transaction=False)
            for key, all_of_it in zip(hashes, whole, strict=True):
                if all_of_it:
                    pipe.hgetall(key)
                else:
                    for batch in batches:
                        pipe.hmget(key, batch)
            replies = iter(await pipe.execute())
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        found = Marks()
        asked = set(unique)
        for into, all_of_it in zip((found.starred, found.ratings), whole, strict=True):
            if all_of_it:
                pairs = [(reply_text(k), v) for k, v in next(replies).items()]
                into.update((k, int(v)) for k, v in pairs if k in asked)
            else:
                for batch in batches:
                    values = next(replies)
                    into.update((k, int(v)) for k, v in zip(batch, values, strict=True) if v is not None)
        return found
