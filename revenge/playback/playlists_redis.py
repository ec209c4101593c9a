"""Playlists in Dragonfly/Redis: ``rv:{<user>}:playlists`` (id → the playlist as JSON), written by Lua
scripts (``lua/playlists_*.lua``) with their key in KEYS; and ``rv:public-playlists`` (id → owner's user
id), the index of public ones other users read, the one key not under a user's hash tag. The index is
written after the playlist (another slot: not in the same script), so a reader checks each playlist it
names is still there and public, and drops the entries that are not: a private playlist is never
shown, even after a crash between the two writes."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from revenge.playback.playlists import (
    MAX_PLAYLISTS,
    MAX_PUBLIC,
    Playlist,
    by_name,
    decode,
    encode,
    owned_by_name,
)
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.playback")

_KEY_GUARD = key_guard_lua({"HLEN": 1, "HSET": 1, "HEXISTS": 1, "HGET": 1})
PUBLIC_KEY = "rv:public-playlists"
BATCH = 500  # HGETs per pipeline


def playlists_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:playlists"


class RedisPlaylistStore:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard)
                   for name in ("playlists_add", "playlists_put", "playlists_restore")]
        self._redis = ScriptedRedis(url, timeout_seconds, "playlists", scripts, log)

    @property
    def redis(self) -> ScriptedRedis:
        return self._redis

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def add(self, user_id: str, playlist: Playlist) -> bool:
        reply = await self._redis.evalsha("playlists_add", (playlists_key(user_id),),
                                          (str(MAX_PLAYLISTS), playlist.id, encode(playlist).decode()))
        if int(reply) != 1:
            return False
        if playlist.public:
            await self._index(user_id, playlist)
        return True

    async def _index(self, user_id: str, playlist: Playlist) -> None:
        try:
            if playlist.public:
                await self._redis.client().hset(PUBLIC_KEY, playlist.id, user_id)
            else:
                await self._redis.client().hdel(PUBLIC_KEY, playlist.id)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

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
        return by_name([decode(d) for d in found])

    async def put(self, user_id: str, playlist: Playlist) -> bool:
        reply = await self._redis.evalsha("playlists_put", (playlists_key(user_id),),
                                          (playlist.id, encode(playlist).decode()))
        if int(reply) != 1:
            return False
        await self._index(user_id, playlist)
        return True

    async def restore(self, user_id: str, playlist: Playlist, created: bool) -> None:
        """Write ``playlist`` unless the stored one changed later; ``created``: it may be stored anew (a
        journal replay: ``revenge.playback.journaled``)."""
        reply = await self._redis.evalsha("playlists_restore", (playlists_key(user_id),),
                                          (playlist.id, encode(playlist).decode(), str(playlist.changed_ms),
                                           "add" if created else "put"))
        if int(reply) == 1:
            await self._index(user_id, playlist)

    async def delete(self, user_id: str, playlist_id: str) -> bool:
        try:
            pipe = self._redis.client().pipeline(transaction=False)
            pipe.hdel(playlists_key(user_id), playlist_id)
            pipe.hdel(PUBLIC_KEY, playlist_id)  # ids are the server's, random: never another user's
            deleted, _ = await pipe.execute()
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return int(deleted) == 1

    async def _checked(self, entries: list[tuple[str, str]]) -> list[tuple[str, Playlist]]:
        """The playlists ``(id, owner)`` index entries name that are there and public; the others are
        dropped from the index."""
        found: list[tuple[str, Playlist]] = []
        stale: list[str] = []
        try:
            for start in range(0, len(entries), BATCH):
                batch = entries[start:start + BATCH]
                pipe = self._redis.client().pipeline(transaction=False)
                for playlist_id, owner in batch:
                    pipe.hget(playlists_key(owner), playlist_id)
                for (playlist_id, owner), data in zip(batch, await pipe.execute(), strict=True):
                    playlist = decode(data) if data is not None else None
                    if playlist is not None and playlist.public:
                        found.append((owner, playlist))
                    else:
                        stale.append(playlist_id)
            if stale:
                await self._redis.client().hdel(PUBLIC_KEY, *stale)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return found

    async def public(self) -> list[tuple[str, Playlist]]:
        entries: list[tuple[str, str]] = []
        try:
            async for playlist_id, owner in self._redis.client().hscan_iter(PUBLIC_KEY, count=BATCH):
                entries.append((reply_text(playlist_id), reply_text(owner)))
                if len(entries) >= MAX_PUBLIC:
                    break
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return owned_by_name(await self._checked(entries))

    async def get_public(self, playlist_id: str) -> tuple[str, Playlist] | None:
        try:
            owner = await self._redis.client().hget(PUBLIC_KEY, playlist_id)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        found = await self._checked([(playlist_id, reply_text(owner))]) if owner is not None else []
        return found[0] if found else None
