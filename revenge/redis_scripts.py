"""Lua scripts on Dragonfly/Redis: the plumbing the Redis-backed stores (progress, records, sessions) share.

* The client: socket timeouts on connect and on every command, and one immediate retry on a broken
  connection. After a server restart every pooled connection is dead, and the retry on a fresh one is
  what makes a store recover without the app restarting; a refused connection fails again at once, so
  an outage answers 503 quickly.
* Scripts are loaded when the store opens (the server must compute the same SHA1), then called by
  EVALSHA with every key they touch in KEYS. ``NOSCRIPT`` (a fresh, restarted or flushed server) loads
  them again and re-runs what was refused, once.
* Several calls go in ONE ``pipeline(transaction=False)`` (one round trip, no MULTI: each script is
  already atomic for its keys).
* Anything that fails to reach or write the server — refused connections, timeouts, ``LOADING``,
  ``OOM``, ``READONLY``, a script error — is ``StoreUnavailable``, never an acknowledgement.
* ``on_load`` runs after every load of the scripts — on open, and after a ``NOSCRIPT``, i.e. on a
  restarted server — so a store can check the server again there (the progress store reads its
  persistence, ``persistence()``, and refuses a server that would lose acknowledged writes).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from revenge.errors import StoreUnavailable

ScriptCall = tuple[str, Sequence[str], Sequence[str | bytes]]  # (script name, KEYS, ARGV)

_KEY_GUARD_TEMPLATE = """\
local redis = (function(real)
  local declared = {}
  for _, k in ipairs(KEYS) do declared[k] = true end
  -- Commands the scripts use, and how many of their arguments are keys (-1: all of them).
  local key_args = {<KEY_ARGS>}
  local function check(cmd, ...)
    local args = {...}
    local n = key_args[string.upper(cmd)]
    if n == nil then error('key guard: unknown command ' .. cmd) end
    if n < 0 then n = #args end
    for i = 1, n do
      if not declared[args[i]] then error('key guard: undeclared key ' .. tostring(args[i])) end
    end
  end
  return setmetatable({
    call = function(cmd, ...) check(cmd, ...) return real.call(cmd, ...) end,
    pcall = function(cmd, ...) check(cmd, ...) return real.pcall(cmd, ...) end,
  }, {__index = real})
end)(redis)
"""


def key_guard_lua(key_args: Mapping[str, int]) -> str:
    """Lua to put before a script so that ``redis.call``/``pcall`` on a key it did not declare in KEYS
    fails, as on Dragonfly, and so does a command missing from ``key_args`` (command → how many of its
    first arguments are keys; -1: all of them). Off in production (it costs a Lua function call per
    command); the tests turn it on."""
    return _KEY_GUARD_TEMPLATE.replace("<KEY_ARGS>", ", ".join(f"{cmd.upper()} = {n}"
                                                               for cmd, n in key_args.items()))


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, source: str) -> LuaScript:
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    @classmethod
    def packaged(cls, package: str, name: str, key_guard: str = "") -> LuaScript:
        """``lua/<name>.lua`` as shipped in ``package``, with ``key_guard`` (``key_guard_lua``'s text,
        which the contract tests turn on) in front."""
        return cls.of(name, key_guard + resources.files(package).joinpath("lua", f"{name}.lua").read_text())


def reply_text(value: bytes | str) -> str:
    """A Redis reply as text (redis-py answers bytes unless the client decodes)."""
    return value.decode() if isinstance(value, bytes) else value


def redacted_url(url: str) -> str:
    """``url`` without its password (``redis://user:secret@host`` → ``redis://user:***@host``): what
    error messages, logs and /healthz may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class ScriptedRedis:
    """The connection of one store to ``url`` and the scripts it runs. ``name`` ("progress", "records",
    "session") starts every error message: "records store redis://…: <error>", "session store is not
    open"; ``scripts`` (by name) may be added to before the store opens. ``on_load`` runs after every
    load of the scripts; what it raises fails the open or the call that found the scripts gone."""

    def __init__(self, url: str, timeout_seconds: float, name: str, scripts: Sequence[LuaScript],
                 log: logging.Logger, *, on_load: Callable[[], Awaitable[object]] | None = None) -> None:
        self.url = url
        self.name = name
        self.scripts = {script.name: script for script in scripts}
        self._timeout = timeout_seconds
        self._log = log
        self._client: aioredis.Redis | None = None
        self._on_load = on_load

    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreUnavailable(f"{self.name} store is not open")
        return self._client

    def unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"{self.name} store {redacted_url(self.url)}: {exc}")

    async def open(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        try:
            await self.load()
        except StoreUnavailable:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def load(self) -> None:
        """Load the scripts, then run ``on_load``."""
        client = self.client()
        try:
            for script in self.scripts.values():
                sha = await client.script_load(script.source)
                if (sha.decode() if isinstance(sha, bytes) else sha) != script.sha:
                    raise StoreUnavailable(f"server computed sha {sha!r} for script {script.name}")
        except RedisError as exc:
            raise self.unavailable(exc) from exc
        if self._on_load is not None:
            await self._on_load()

    async def persistence(self) -> tuple[dict[str, Any], dict[Any, Any] | None, str]:
        """What the server says about its persistence: its ``INFO server`` answer, its ``CONFIG GET
        append*`` answer (``None`` when refused, or not asked: Dragonfly has no append-only file) and the
        refusal's message."""
        client = self.client()
        config: dict[Any, Any] | None = None
        refused = ""
        try:
            info = await client.info("server")
            if "dragonfly_version" not in info:
                try:
                    config = await client.config_get("append*")
                except ResponseError as exc:  # CONFIG renamed away, or not allowed by an ACL
                    refused = str(exc)
        except RedisError as exc:
            raise self.unavailable(exc) from exc
        return info, config, refused

    async def ping(self) -> None:
        try:
            await self.client().ping()
        except RedisError as exc:
            raise self.unavailable(exc) from exc

    async def eval_pipeline(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run ``(script name, keys, args)`` calls in one pipeline, in order; the replies, in order."""
        client = self.client()
        results: list[Any] = []
        pending = calls
        for attempt in range(2):
            try:
                pipe = client.pipeline(transaction=False)
                for name, keys, args in pending:
                    pipe.execute_command("EVALSHA", self.scripts[name].sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
            except RedisError as exc:
                raise self.unavailable(exc) from exc
            missing = next((i for i, r in enumerate(replies) if isinstance(r, NoScriptError)), None)
            if missing is None or attempt == 1:
                results.extend(replies)
                break
            # Scripts are gone (restarted or flushed server): what ran before the first refusal stays
            # applied; load the scripts and re-run the rest, in order.
            results.extend(replies[:missing])
            pending = pending[missing:]
            await self.load()
        for reply in results:
            if isinstance(reply, ResponseError):
                # OOM, READONLY, BUSY, LOADING…: the server refused the write. (A script error would be
                # a bug; it is reported the same way, loudly, rather than acknowledged.)
                self._log.error("%s store refused a script call: %s", self.name, reply)
                raise self.unavailable(reply)
        return results

    async def evalsha(self, name: str, keys: Sequence[str], args: Sequence[str]) -> Any:
        """One script call on its own (no pipeline); NOSCRIPT loads the scripts and runs it again."""
        sha = self.scripts[name].sha
        for attempt in range(2):
            try:
                return await self.client().evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                if attempt == 1:
                    raise StoreUnavailable(f"{self.name} store keeps losing its script") from None
                await self.load()  # a restarted or flushed server: load and run again
            except RedisError as exc:
                raise self.unavailable(exc) from exc
        raise AssertionError("unreachable")
