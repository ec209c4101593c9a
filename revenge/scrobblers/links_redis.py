"""The Dragonfly/Redis link store (``REVENGE_STORE=redis://…``); see ``links`` for the contract.

Keys: ``rv:{<user>}:scrobbler:<service>`` (hash: the fields of ``Link``), ``rv:{<user>}:scrobbler-lease:
<service>`` (the lease: ``SET NX PX`` with a random token, freed by a compare-and-delete script), and
``rv:scrobbler-links``, the set of ``<service>:<user>`` the forwarder visits (the one key not under a
user's tag: only plain single-key commands touch it, never a script).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from redis.exceptions import RedisError

from revenge.playback.scrobbles import SERVICES, ServiceName
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua, reply_text
from revenge.scrobblers.model import Link

log = logging.getLogger("revenge.scrobblers")

SCRIPT_NAMES = ("links_put", "links_note", "lease_release")
LINKED_SET = "rv:scrobbler-links"
_KEY_GUARD = key_guard_lua({"DEL": -1, "HSET": 1, "HGET": 1, "HDEL": 1, "GET": 1})
_FIELDS = ("account", "secret", "linked_at", "stopped", "last_error", "last_error_at", "last_sent_at")


def link_key(user_id: str, service: str) -> str:
    return f"rv:{{{user_id}}}:scrobbler:{service}"


def lease_key(user_id: str, service: str) -> str:
    return f"rv:{{{user_id}}}:scrobbler-lease:{service}"


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _link(user_id: str, service: ServiceName, fields: Mapping[str, str]) -> Link:
    return Link(user_id=user_id, service=service, account=fields["account"], secret=fields["secret"],
                linked_at=int(fields["linked_at"]), stopped=fields.get("stopped"),
                last_error=fields.get("last_error"), last_error_at=_int(fields.get("last_error_at")),
                last_sent_at=_int(fields.get("last_sent_at")))


class RedisLinkStore:
    def __init__(self, url: str, timeout_seconds: float, *, key_guard: bool = False) -> None:
        guard = _KEY_GUARD if key_guard else ""
        scripts = [LuaScript.packaged("revenge.scrobblers", name, guard) for name in SCRIPT_NAMES]
        self._redis = ScriptedRedis(url, timeout_seconds, "scrobblers", scripts, log)

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def get(self, user_id: str, service: ServiceName) -> Link | None:
        try:
            raw = await self._redis.client().hgetall(link_key(user_id, service))
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        fields = {reply_text(k): reply_text(v) for k, v in raw.items()}
        return _link(user_id, service, fields) if "secret" in fields else None

    async def put(self, link: Link) -> None:
        args: list[str] = []
        for name in _FIELDS:
            value = getattr(link, name)
            if value is not None:
                args += [name, str(value)]
        await self._redis.evalsha("links_put", (link_key(link.user_id, link.service),), args)
        try:
            await self._redis.client().sadd(LINKED_SET, f"{link.service}:{link.user_id}")
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

    async def delete(self, user_id: str, service: ServiceName) -> bool:
        try:
            pipe = self._redis.client().pipeline(transaction=False)
            pipe.delete(link_key(user_id, service))
            pipe.srem(LINKED_SET, f"{service}:{user_id}")
            deleted, _ = await pipe.execute()
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return bool(deleted)

    async def linked(self) -> list[tuple[str, ServiceName]]:
        try:
            members = await self._redis.client().smembers(LINKED_SET)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        found: list[tuple[str, ServiceName]] = []
        for member in members:
            service, _, user_id = reply_text(member).partition(":")
            for known in SERVICES:
                if service == known and user_id:
                    found.append((user_id, known))
        return sorted(found)

    async def note(self, user_id: str, service: ServiceName, linked_at: int, at: int, *,
                   error: str | None = None, permanent: bool = False) -> None:
        if error is None:
            pairs = ["last_sent_at", str(at), "last_error", "", "last_error_at", ""]
        else:
            pairs = ["last_error", error, "last_error_at", str(at)]
            if permanent:
                pairs += ["stopped", error]
        await self._redis.evalsha("links_note", (link_key(user_id, service),), [str(linked_at), *pairs])

    async def acquire(self, user_id: str, service: ServiceName, ttl_ms: int) -> str | None:
        token = secrets.token_hex(16)
        try:
            taken = await self._redis.client().set(lease_key(user_id, service), token, nx=True, px=ttl_ms)
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        return token if taken else None

    async def release(self, user_id: str, service: ServiceName, token: str) -> None:
        await self._redis.evalsha("lease_release", (lease_key(user_id, service),), [token])
