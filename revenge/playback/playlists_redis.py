"""Playlists in Dragonfly/Redis: ``rv:{<user>}:playlists`` (id → the playlist as JSON), written by Lua
scripts (``lua/playlists_*.lua``) with their key in KEYS."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from revenge.playback.playlists import MAX_PLAYLISTS, Playlist, decode, encode
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HLEN": 1, "HSET": 1, "HEXISTS": 1})


def playlists_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:playlists"


class RedisPlaylistStore:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard)
                   for name in ("playlists_add", "playlists_put")]
        self._redis = ScriptedRedis(url, timeout_seconds, "playlists", scripts, log)

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def add(self, user_id: str, playlist: Playlist) -> bool:
        reply = await self._redis.evalsha("playlists_add", (playlists_key(user_id),),
                                          (str(MAX_PLAYLISTS), playlist.id, encode(playlist).decode()))
        return int(reply) == 1

    async def get(self, user_id: str, playlist_id: str) -> Playlist | None:
        try:
            data = await self._redis.client().hget(playlists_key(user_id), playlist_id)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return decode(data) if data is not None else None

    async def all(self, user_id: str) -> list[Playlist]:
        try:
            found = await self._redis.client().hvals(playlists_key(user_id))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return sorted((decode(d) for d in found), key=lambda p: (p.name.casefold(), p.id))

    async def put(self, user_id: str, playlist: Playlist) -> bool:
        reply = await self._redis.evalsha("playlists_put", (playlists_key(user_id),),
                                          (playlist.id, encode(playlist).decode()))
        return int(reply) == 1

    async def delete(self, user_id: str, playlist_id: str) -> bool:
        try:
            return int(await self._redis.client().hdel(playlists_key(user_id), playlist_id)) == 1
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
