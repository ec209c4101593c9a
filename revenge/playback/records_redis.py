"""The Dragonfly/Redis records store (``REVENGE_STORE=redis://…``): scrobbles, outbox, stats, bookmarks.

Keys (every one carries the user id as a hash tag, so all keys of one script call share a cluster slot):

* ``rv:{<user>}:scrobble:<item>-<started_at>``  hash: one listen (the fields of ``Scrobble``; each
  delivery as ``d:<service>`` = ``Delivery.encode()``)
* ``rv:{<user>}:outbox:<service>``  sorted set: ids of the records queued for the service, scored by
  ``started_at``. (``rv:{<user>}:scrobble-outbox``, the single outbox of before, is moved into these
  the first time a user's outbox is read: ``_migrate_old_outbox``.)
* ``rv:{<user>}:listening``  hash: ``<day>:<type>:ms`` and ``<day>:<type>:n``, the listening stats kept
  up to date by the add script, so a stats query is one HMGET whatever the number of listens
* ``rv:{<user>}:bookmarks:<item>``  hash: bookmark id → ``Bookmark.encode()``

Writes that must be atomic are Lua scripts (``lua/records_*.lua``) with every key they touch in KEYS;
several calls go in ONE ``pipeline(transaction=False)`` of EVALSHAs (no MULTI). ``NOSCRIPT`` (a fresh,
restarted or flushed server) loads the scripts and re-runs from the first refused call. A connection
that died with the server is replaced and the command retried once; anything else that fails to reach
or write the server is ``StoreUnavailable``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from revenge.library.model import ITEM_TYPES
from revenge.playback.bookmarks import Bookmark, ordered
from revenge.playback.scrobbles import (
    SCROBBLE_ID_RE,
    AddResult,
    DayTotal,
    Delivery,
    Mark,
    Scrobble,
    ServiceName,
    queued_services,
)
from revenge.redis_scripts import LuaScript, ScriptCall, ScriptedRedis, key_guard_lua, reply_text

log = logging.getLogger("revenge.playback")

SCRIPT_NAMES = ("records_add_scrobble", "records_mark", "records_add_bookmark")

# Makes a script touching a key it did not declare fail, as on Dragonfly (the contract tests turn it on).
_KEY_GUARD = key_guard_lua({"EXISTS": 1, "HGET": 1, "HSET": 1, "HGETALL": 1, "HINCRBY": 1, "HLEN": 1,
                            "ZADD": 1, "ZREM": 1})


def scrobble_key(user_id: str, scrobble_id: str) -> str:
    return f"rv:{{{user_id}}}:scrobble:{scrobble_id}"


def outbox_key(user_id: str, service: str) -> str:
    return f"rv:{{{user_id}}}:outbox:{service}"


def old_outbox_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:scrobble-outbox"


def listening_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:listening"


def bookmarks_key(user_id: str, item_id: str) -> str:
    return f"rv:{{{user_id}}}:bookmarks:{item_id}"


def _fields(flat: Sequence[Any] | Mapping[Any, Any]) -> dict[str, str]:
    if isinstance(flat, Mapping):
        return {reply_text(k): reply_text(v) for k, v in flat.items()}
    return {reply_text(flat[i]): reply_text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _scrobble(fields: Mapping[str, str]) -> Scrobble:
    item_type = fields["item_type"]
    source = fields["source"]
    if item_type not in ITEM_TYPES or source not in ("client", "progress"):
        raise ValueError(f"bad stored scrobble: {dict(fields)!r}")
    deliveries = tuple(Delivery.decode(name[2:], value) for name, value in sorted(fields.items())
                       if name.startswith("d:"))
    return Scrobble(
        user_id=fields["user_id"], item_id=fields["item_id"], item_type=item_type,  # type: ignore[arg-type]
        started_at=int(fields["started_at"]), listened_ms=int(fields["listened_ms"]),
        device_id=fields["device_id"], source=source,  # type: ignore[arg-type]
        recorded_at=int(fields["recorded_at"]), deliveries=deliveries,
    )


class RedisRecordStore:
    """``RecordStore`` on Dragonfly or any Redis-protocol server; see the module docstring."""

    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.playback", name, guard) for name in SCRIPT_NAMES]
        self._redis = ScriptedRedis(url, timeout_seconds, "records", scripts, log)

    @property
    def redis(self) -> ScriptedRedis:
        return self._redis

    # --- plumbing (revenge.redis_scripts) ----------------------------------------------------------

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def ping(self) -> None:
        await self._redis.ping()

    # --- scrobbles -----------------------------------------------------------------------------------

    async def add_scrobbles(self, scrobbles: Sequence[Scrobble]) -> list[AddResult]:
        if not scrobbles:
            return []
        calls: list[ScriptCall] = []
        for s in scrobbles:
            keys = (scrobble_key(s.user_id, s.id), listening_key(s.user_id),
                    *(outbox_key(s.user_id, service) for service in queued_services(s.item_type)))
            args = (s.user_id, s.item_id, s.item_type, str(s.started_at), str(s.listened_ms), s.device_id,
                    s.source, str(s.recorded_at), s.id, str(s.day))
            calls.append(("records_add_scrobble", keys, args))
        replies = await self._redis.eval_pipeline(calls)
        return [AddResult(_scrobble(_fields(flat)), bool(int(created))) for created, flat in replies]

    async def get_scrobble(self, user_id: str, scrobble_id: str) -> Scrobble | None:
        if not SCROBBLE_ID_RE.fullmatch(scrobble_id):
            return None
        try:
            fields = await self._redis.client().hgetall(scrobble_key(user_id, scrobble_id))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return _scrobble(_fields(fields)) if fields else None

    async def _migrate_old_outbox(self, user_id: str) -> None:
        """Records queued before outboxes were per service sit in ``rv:{<user>}:scrobble-outbox``: queue
        its tracks for every service, then drop it. Idempotent (ZADD), so two instances doing it at once
        at worst queue a record twice, which the services' dedup by timestamp absorbs."""
        client = self._redis.client()
        old = old_outbox_key(user_id)
        if not await client.exists(old):
            return
        members = await client.zrange(old, 0, -1, withscores=True)
        pipe = client.pipeline(transaction=False)
        for scrobble_id, _ in members:
            pipe.hget(scrobble_key(user_id, reply_text(scrobble_id)), "item_type")
        types = await pipe.execute() if members else []
        pipe = client.pipeline(transaction=False)
        for (scrobble_id, score), item_type in zip(members, types, strict=True):
            for service in queued_services(reply_text(item_type)) if item_type else ():  # type: ignore[arg-type]
                pipe.zadd(outbox_key(user_id, service), {scrobble_id: score})
        pipe.delete(old)
        await pipe.execute()

    async def outbox(self, user_id: str, service: ServiceName, limit: int) -> list[Scrobble]:
        client = self._redis.client()
        try:
            await self._migrate_old_outbox(user_id)
            # Ties on the score come in member order, and members start with the item id.
            ids = await client.zrange(outbox_key(user_id, service), 0, limit - 1)
            if not ids:
                return []
            pipe = client.pipeline(transaction=False)
            for scrobble_id in ids:
                pipe.hgetall(scrobble_key(user_id, reply_text(scrobble_id)))
            hashes = await pipe.execute()
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return [_scrobble(_fields(h)) for h in hashes if h]

    async def mark(self, user_id: str, service: ServiceName, marks: Sequence[Mark], now_ms: int) -> int:
        calls: list[ScriptCall] = [
            ("records_mark", (outbox_key(user_id, service), scrobble_key(user_id, m.scrobble_id)),
             (m.scrobble_id, service, m.delivery(service, now_ms).encode()))
            for m in marks if SCROBBLE_ID_RE.fullmatch(m.scrobble_id)
        ]
        if not calls:
            return 0
        return sum(int(r) for r in await self._redis.eval_pipeline(calls))

    async def outbox_size(self, user_id: str, service: ServiceName) -> int:
        try:
            return int(await self._redis.client().zcard(outbox_key(user_id, service)))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

    async def listening_totals(self, user_id: str, first_day: int, last_day: int) -> list[DayTotal]:
        keys = [(day, t) for day in range(first_day, last_day + 1) for t in sorted(ITEM_TYPES)]
        fields = [f"{day}:{t}:{suffix}" for day, t in keys for suffix in ("ms", "n")]
        try:
            values = await self._redis.client().hmget(listening_key(user_id), fields)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        totals = []
        for index, (day, item_type) in enumerate(keys):
            ms, n = values[2 * index], values[2 * index + 1]
            if n is not None and int(n) > 0:
                totals.append(DayTotal(day, item_type, int(ms or 0), int(n)))
        return totals

    # --- bookmarks -----------------------------------------------------------------------------------

    async def add_bookmark(self, bookmark: Bookmark, max_per_item: int) -> bool:
        key = bookmarks_key(bookmark.user_id, bookmark.item_id)
        (stored,) = await self._redis.eval_pipeline([("records_add_bookmark", (key,),
                                                      (bookmark.id, bookmark.encode(), str(max_per_item)))])
        return bool(int(stored))

    async def bookmarks(self, user_id: str, item_id: str) -> list[Bookmark]:
        try:
            entries = await self._redis.client().hgetall(bookmarks_key(user_id, item_id))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return ordered(Bookmark.decode(user_id, item_id, reply_text(k), v) for k, v in entries.items())

    async def delete_bookmark(self, user_id: str, item_id: str, bookmark_id: str) -> bool:
        try:
            return bool(await self._redis.client().hdel(bookmarks_key(user_id, item_id), bookmark_id))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
