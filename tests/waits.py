"""Waiting for a state in tests: poll the condition itself until a deadline, never sleep and hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 30.0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEFAULT_TIMEOUT_S,
               interval: float = 0.05) -> None:
    """Return once ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def until(predicate: Callable[[], bool], what: str, seconds: float = DEFAULT_TIMEOUT_S) -> None:
    """The same on an event loop: the loop runs (other tasks progress) between the checks."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        await asyncio.sleep(0.005)
