"""Where playback sessions live: in memory (embedded store) or in Dragonfly/Redis (shared by instances).

Both stores implement :class:`SessionStore` with the rules of ``revenge.playback.sessions``; the Redis
one runs them in ``lua/sessions.lua`` so that starting a session (idle ones dropped, the same device's
replaced, the cap checked) is atomic per user across instances. Every operation is scoped to a user:
a session id of another user is simply not found.

Redis keys (``rv:{<user>}:s:fixed``, ``rv:{<user>}:s:live``) carry the user as a hash tag, are the only
keys the script touches (all passed in KEYS), and expire ``idle`` after the user's last activity. One
EVALSHA per operation, no MULTI (``revenge.redis_scripts``). Failures to reach the server are
``StoreUnavailable`` (503).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from revenge.playback import sessions as rules
from revenge.playback.sessions import PlayerState, Session
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua

if TYPE_CHECKING:
    from revenge.config import Settings

log = logging.getLogger("revenge.playback")


@dataclass(frozen=True, slots=True)
class StartOutcome:
    accepted: bool  # False: the user's cap is reached; the session was not stored
    expired: tuple[Session, ...]  # idle sessions of the user dropped on the way
    replaced: tuple[Session, ...]  # the same device's previous session (ended)


class SessionStore(Protocol):
    """One user's sessions at a time; ``now_ms`` is the caller's clock (ms since the epoch)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def start(self, session: Session, cap: int, now_ms: int) -> StartOutcome:
        """Store ``session`` unless the user already has ``cap`` live sessions on other devices."""

    async def get(self, user_id: str, session_id: str, now_ms: int) -> Session | None:
        """The user's live session of that id (``None``: unknown, another user's, or idle)."""

    async def heartbeat(self, user_id: str, session_id: str, position_ms: int, state: PlayerState,
                        now_ms: int) -> Session | None:
        """Record position and state and refresh the idle timer; ``None`` as for ``get``."""

    async def touch_item(self, user_id: str, item_id: str, now_ms: int) -> list[Session]:
        """Refresh the idle timer of the user's live sessions on ``item_id``; returns them."""

    async def end(self, user_id: str, session_id: str) -> Session | None:
        """Remove the session; returns it, or ``None`` when the user has no session of that id."""

    async def sweep(self, user_id: str, now_ms: int) -> tuple[list[Session], list[Session]]:
        """(live, idle) sessions of the user; the idle ones are removed."""


class MemorySessionStore:
    """Sessions in a dict, for the embedded (single-instance) setup. Every method runs without an
    await in the middle, so each is atomic on the event loop."""

    def __init__(self, idle_ms: int) -> None:
        self.idle_ms = idle_ms
        self._by_user: dict[str, dict[str, Session]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._by_user.clear()

    def _live(self, user_id: str, session_id: str, now_ms: int) -> Session | None:
        session = self._by_user.get(user_id, {}).get(session_id)
        if session is None or rules.is_idle(session, now_ms, self.idle_ms):
            return None
        return session

    def _drop(self, user_id: str, session_ids: Sequence[str]) -> None:
        mine = self._by_user.get(user_id, {})
        for session_id in session_ids:
            mine.pop(session_id, None)
        if not mine:
            self._by_user.pop(user_id, None)

    async def start(self, session: Session, cap: int, now_ms: int) -> StartOutcome:
        mine = self._by_user.get(session.user_id, {})
        plan = rules.plan_start(mine.values(), session.device_id, cap, now_ms, self.idle_ms)
        self._drop(session.user_id, [s.id for s in plan.expired + plan.replaced])
        if plan.accepted:
            self._by_user.setdefault(session.user_id, {})[session.id] = session
        return StartOutcome(plan.accepted, plan.expired, plan.replaced)

    async def get(self, user_id: str, session_id: str, now_ms: int) -> Session | None:
        return self._live(user_id, session_id, now_ms)

    async def heartbeat(self, user_id: str, session_id: str, position_ms: int, state: PlayerState,
                        now_ms: int) -> Session | None:
        session = self._live(user_id, session_id, now_ms)
        if session is None:
            return None
        updated = rules.heartbeat(session, position_ms, state, now_ms)
        self._by_user[user_id][session_id] = updated
        return updated

    async def touch_item(self, user_id: str, item_id: str, now_ms: int) -> list[Session]:
        mine = self._by_user.get(user_id, {})
        touched = []
        for session in list(mine.values()):
            if session.item_id == item_id and not rules.is_idle(session, now_ms, self.idle_ms):
                mine[session.id] = rules.touch(session, now_ms)
                touched.append(mine[session.id])
        return touched

    async def end(self, user_id: str, session_id: str) -> Session | None:
        session = self._by_user.get(user_id, {}).get(session_id)
        if session is not None:
            self._drop(user_id, [session_id])
        return session

    async def sweep(self, user_id: str, now_ms: int) -> tuple[list[Session], list[Session]]:
        live, idle = rules.sweep(list(self._by_user.get(user_id, {}).values()), now_ms, self.idle_ms)
        self._drop(user_id, [s.id for s in idle])
        return live, idle


def fixed_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:s:fixed"


def live_key(user_id: str) -> str:
    return f"rv:{{{user_id}}}:s:live"


# Makes the script touching a key it did not declare fail, as on Dragonfly (the tests turn it on).
_KEY_GUARD = key_guard_lua({"HGETALL": 1, "HGET": 1, "HSET": 1, "HDEL": 1, "PTTL": 1, "PEXPIRE": 1})


def _decode_entry(entry: Sequence[Any]) -> Session | None:
    """``{id, static JSON, live text}`` → the session; ``None`` for a half-written or foreign entry."""
    if len(entry) != 3 or not entry[1]:
        return None
    try:
        return rules.decode(entry[1], entry[2])
    except (ValueError, KeyError, TypeError):
        log.warning("dropping an unreadable stored session %r", entry[0])
        return None


def _decode_entries(entries: Sequence[Sequence[Any]]) -> list[Session]:
    return [s for s in (_decode_entry(e) for e in entries) if s is not None]


class RedisSessionStore:
    """Sessions in Dragonfly/Redis (``settings.store`` is a redis:// URL): see the module docstring."""

    def __init__(self, url: str, idle_ms: int, timeout_seconds: float, *, key_guard: bool = False) -> None:
        self.idle_ms = idle_ms
        script = LuaScript.packaged("revenge.playback", "sessions", _KEY_GUARD if key_guard else "")
        self._redis = ScriptedRedis(url, timeout_seconds, "session", [script], log)

    @classmethod
    def from_settings(cls, settings: Settings, *, key_guard: bool = False) -> RedisSessionStore:
        idle_ms = round(settings.session_idle_seconds * 1000)
        return cls(settings.store, idle_ms, settings.store_timeout_seconds, key_guard=key_guard)

    async def open(self) -> None:
        await self._redis.open()

    async def close(self) -> None:
        await self._redis.close()

    async def _call(self, user_id: str, op: str, now_ms: int, *args: str) -> Any:
        keys = (fixed_key(user_id), live_key(user_id))
        return await self._redis.evalsha("sessions", keys, (op, str(now_ms), str(self.idle_ms), *args))

    async def start(self, session: Session, cap: int, now_ms: int) -> StartOutcome:
        accepted, expired, replaced = await self._call(
            session.user_id, "start", now_ms, session.id, rules.encode_static(session).decode(),
            rules.encode_live(session), session.device_id, str(cap))
        return StartOutcome(bool(accepted), tuple(_decode_entries(expired)), tuple(_decode_entries(replaced)))

    async def get(self, user_id: str, session_id: str, now_ms: int) -> Session | None:
        return _decode_entry(await self._call(user_id, "get", now_ms, session_id))

    async def heartbeat(self, user_id: str, session_id: str, position_ms: int, state: PlayerState,
                        now_ms: int) -> Session | None:
        reply = await self._call(user_id, "heartbeat", now_ms, session_id, str(max(0, position_ms)), state)
        return _decode_entry(reply)

    async def touch_item(self, user_id: str, item_id: str, now_ms: int) -> list[Session]:
        return _decode_entries(await self._call(user_id, "touch_item", now_ms, item_id))

    async def end(self, user_id: str, session_id: str) -> Session | None:
        # "end" ignores the clock; the script still takes one for a uniform ARGV.
        return _decode_entry(await self._call(user_id, "end", 0, session_id))

    async def sweep(self, user_id: str, now_ms: int) -> tuple[list[Session], list[Session]]:
        live, idle = await self._call(user_id, "sweep", now_ms)
        return _decode_entries(live), _decode_entries(idle)


def open_session_store(settings: Settings) -> SessionStore:
    """Memory with the embedded store, Dragonfly/Redis when ``settings.store`` is a URL (not yet opened)."""
    idle_ms = round(settings.session_idle_seconds * 1000)
    if settings.store == "sqlite":
        return MemorySessionStore(idle_ms)
    return RedisSessionStore.from_settings(settings)
