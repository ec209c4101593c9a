"""Stars and ratings in Dragonfly/Redis: ``rv:{<user>}:stars`` (key → ms) and ``rv:{<user>}:ratings``
(key → 1..5), written by Lua scripts (``lua/marks_*.lua``) that hold the cap, their key in KEYS."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.exceptions import RedisError

from revenge.playback.marks import MAX_LOOKUP, MAX_MARKS, Marks, TooManyMarks, check_rating, read_whole
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HEXISTS": 1, "HLEN": 1, "HSETNX": 1, "HSET": 1, "HDEL": 1})
MAX_KEYS_PER_CALL = 500  # one script call: bounded work on the server


def stars_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:stars"


def ratings_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:ratings"


class RedisMarkStore:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard)
                   for name in ("marks_star", "marks_rate")]
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
            reply = await self._redis.evalsha("marks_star", (stars_key(user_id),),
                                              (str(MAX_MARKS), str(at_ms), *batch))
            if int(reply) == 0:
                raise TooManyMarks(f"at most {MAX_MARKS} stars")

    async def unstar(self, user_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self._redis.client().hdel(stars_key(user_id), *keys)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

    async def _all(self, key: str) -> dict[str, int]:
        try:
            found = await self._redis.client().hgetall(key)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return {reply_text(k): int(v) for k, v in found.items()}

    async def starred(self, user_id: str) -> dict[str, int]:
        found = await self._all(stars_key(user_id))
        return dict(sorted(found.items(), key=lambda kv: (kv[1], kv[0])))

    async def set_rating(self, user_id: str, key: str, rating: int) -> None:
        check_rating(rating)
        reply = await self._redis.evalsha("marks_rate", (ratings_key(user_id),),
                                          (str(MAX_MARKS), key, str(rating)))
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
