"""``StoreGuard``: the progress store's circuit (``revenge.progress.circuit``) on the event loop.

Every store operation of the progress service goes through it: refused at once while the circuit is
open, bounded by the store timeout otherwise, and its failure opens the circuit. While open, a task
probes the store (``ProgressStore.check``: it answers and is durable enough) until it is back. The two
transitions are logged, once each per outage, with the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from revenge.errors import StoreUnavailable
from revenge.progress.circuit import Circuit

T = TypeVar("T")
PROBE_INTERVAL_S = 0.5

log = logging.getLogger("revenge.progress")


class StoreGuard:
    def __init__(self, probe: Callable[[], Awaitable[object]], timeout_seconds: float, name: str = "progress",
                 probe_interval: float = PROBE_INTERVAL_S) -> None:
        """``probe()`` raises ``StoreUnavailable`` while the store is down; ``timeout_seconds`` bounds every
        operation and probe."""
        self.circuit = Circuit(probe_interval)
        self.timeout = timeout_seconds
        self.name = name
        self._probe = probe
        self._probe_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def is_down(self) -> bool:
        return self.circuit.is_open

    def down_error(self) -> StoreUnavailable:
        return StoreUnavailable(f"{self.name} store is down: {self.circuit.cause}")

    def check(self) -> None:
        """Raise ``StoreUnavailable`` at once while the store is known down."""
        if self.circuit.is_open:
            raise self.down_error()

    def timed_out(self) -> StoreUnavailable:
        return StoreUnavailable(f"{self.name} store gave no answer within {self.timeout:g} s")

    def failed(self, exc: BaseException) -> None:
        """A store operation failed with ``exc`` (an outage): open the circuit, if not yet open."""
        loop = asyncio.get_running_loop()
        cause = str(exc) or type(exc).__name__
        if not self.circuit.failed(loop.time(), cause):
            return
        log.warning("%s store down (503 until a probe reaches it): %s", self.name, cause)
        if not self._closed and self._probe_task is None:
            self._probe_task = loop.create_task(self._probe_until_up(), name=f"{self.name}-store-probe")

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """``await operation()`` unless the store is down, within the timeout; a failure opens the circuit."""
        self.check()
        try:
            async with asyncio.timeout(self.timeout):
                return await operation()
        except StoreUnavailable as exc:
            self.failed(exc)
            raise
        except TimeoutError:
            error = self.timed_out()
            self.failed(error)
            raise error from None

    async def _probe_until_up(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.circuit.is_open:
                await asyncio.sleep(self.circuit.probe_wait(loop.time()))
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._probe()
                except TimeoutError:
                    self.circuit.probe_failed(loop.time(), str(self.timed_out()))
                except StoreUnavailable as exc:
                    self.circuit.probe_failed(loop.time(), str(exc))
                except Exception as exc:  # a bug in a probe must not end the probing
                    log.exception("%s store probe failed", self.name)
                    self.circuit.probe_failed(loop.time(), repr(exc))
                else:
                    down_for = self.circuit.probe_succeeded(loop.time())
                    if down_for is not None:
                        log.warning("%s store up again after %.1f s down", self.name, down_for)
        finally:
            self._probe_task = None

    async def close(self) -> None:
        """Stop probing (the circuit stays as it is)."""
        self._closed = True
        task = self._probe_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
