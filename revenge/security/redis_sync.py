"""The blocking Redis client of the shared security state (users, keys, signing secrets).

Blocking on purpose: ``authenticate`` and token checks are synchronous (as the SQLite user store's
queries are) and answer from caches; the store is reached only on a cache miss, a secrets re-read every
few seconds, and by the CLI. Every command has the store timeout, a broken connection is retried once on
a fresh one (a restarted server), and any failure is ``StoreUnavailable`` (503), never a wrong answer.
After a failure every call fails at once for ``down_seconds`` (or, when that is infinite, until a
``probe`` call, e.g. from a background thread, succeeds): a frozen server then blocks the event loop for
at most one timeout per such period, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import redacted_url

T = TypeVar("T")
DOWN_SECONDS = 1.0


class SyncRedis:
    def __init__(self, url: str, timeout_seconds: float, name: str, *, down_seconds: float = DOWN_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.name = name
        self._clock = clock
        self._down_seconds = down_seconds
        self._down_until = 0.0
        self._cause = ""
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )

    def run(self, call: Callable[[redis.Redis], T], *, probe: bool = False) -> T:
        """``call(client)``, with any Redis failure as ``StoreUnavailable`` (no password in the text).
        While the store is known down it fails at once, unless ``probe``."""
        if not probe and self._clock() < self._down_until:
            raise StoreUnavailable(f"{self.name} store is down: {self._cause}")
        try:
            result = call(self.client)
        except RedisError as exc:
            self._cause = f"{redacted_url(self.url)}: {exc}"
            self._down_until = self._clock() + self._down_seconds
            raise StoreUnavailable(f"{self.name} store {self._cause}") from exc
        self._down_until = 0.0
        return result

    def close(self) -> None:
        self.client.close()

