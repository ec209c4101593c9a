"""``LibraryWatcher``: the library's folders watched live (``watchfiles``: inotify, FSEvents, …) and a
periodic incremental scan for what delivers no events (network mounts).

Changes are collected until the folders have been quiet for ``QUIET_MS`` (or ``MAX_WAIT_MS`` passed
since the batch began), turned into folders to rescan (``changes.rescan_targets``: a whole album
copied in is one rescan) and handed to ``ScanRunner.rescan``, which takes turns with full scans. A
watcher that fails (a root unmounted, the inotify watch limit reached) is logged and started again
after a backoff (1 s doubling to 60 s); it never stops the server. Roots that appear or vanish are
noticed within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import watchfiles

from revenge.config import Settings
from revenge.library.changes import Event, rescan_targets
from revenge.library.model import ItemType
from revenge.library.scan import library_roots
from revenge.library.scan_runner import ScanRunner
from revenge.metrics import Metrics

log = logging.getLogger("revenge.watch")

QUIET_MS = 1000  # a batch ends after this long without a new change …
MAX_WAIT_MS = 5000  # … or this long after it began, so a copy that never pauses still shows up
IDLE_CHECK_MS = 1000  # without changes, look this often whether roots came or went
_BACKOFF_FIRST_S = 1.0
_BACKOFF_MAX_S = 60.0
_HEALTHY_S = 60.0  # a watch that ran this long resets the backoff


class WatchStatus:
    """What /healthz shows of the watcher (thread-safe reads)."""

    def __init__(self, enabled: bool, scan_interval_seconds: float) -> None:
        self._lock = threading.Lock()
        self.enabled = enabled
        self.scan_interval_seconds = scan_interval_seconds
        self.watching: list[str] = []
        self.batches = 0
        self.rescans = 0
        self.restarts = 0
        self.last_batch_at: float | None = None
        self.error: str | None = None

    def update(self, **values: Any) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"enabled": self.enabled, "watching": list(self.watching), "batches": self.batches,
                    "rescans": self.rescans, "restarts": self.restarts, "last_batch_at": self.last_batch_at,
                    "error": self.error, "scan_interval_seconds": self.scan_interval_seconds}


def _outermost(roots: Iterable[Path]) -> list[Path]:
    """Existing roots not inside another (a recursive watch of the outer one covers them)."""
    present = [r for r in roots if r.is_dir()]
    return sorted(r for r in present if not any(o != r and r.is_relative_to(o) for o in present))


class LibraryWatcher:
    def __init__(self, settings: Settings, scans: ScanRunner, metrics: Metrics) -> None:
        self._settings = settings
        self._scans = scans
        self._metrics = metrics
        self.status = WatchStatus(settings.watch, settings.scan_interval_seconds)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._scans.has_folders:
            return
        if self._settings.watch:
            self._tasks.append(asyncio.create_task(self._supervise(), name="library-watch"))
        if self._settings.scan_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._periodic(), name="library-periodic-scan"))

    async def aclose(self) -> None:
        self._stop.set()  # awatch returns within a step; a rescan in flight finishes first
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _periodic(self) -> None:
        while not self._stop.is_set():
            await self._pause(self._settings.scan_interval_seconds)
            if not self._stop.is_set() and self._scans.start():
                log.info("periodic library scan started")

    async def _supervise(self) -> None:
        backoff = _BACKOFF_FIRST_S
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                await self._watch()
                continue  # the set of roots changed (or we are stopping): watch again at once
            except Exception as exc:
                log.exception("library watcher failed; watching again in %.0f s", backoff)
                self._metrics.library_watch_restarts.inc()
                self.status.update(error=f"{type(exc).__name__}: {exc}", restarts=self.status.restarts + 1,
                                   watching=[])
            if time.monotonic() - began > _HEALTHY_S:
                backoff = _BACKOFF_FIRST_S
            await self._pause(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _watch(self) -> None:
        roots = library_roots(self._settings)
        paths = _outermost(r for r, _ in roots)
        if not paths:
            self.status.update(watching=[])
            await self._pause(10.0)
            return
        announced = False
        async for changes in watchfiles.awatch(*paths, watch_filter=None, debounce=MAX_WAIT_MS,
                                               step=QUIET_MS, stop_event=self._stop,
                                               rust_timeout=IDLE_CHECK_MS, yield_on_timeout=True):
            if not announced:
                # The first answer comes after every folder's watch was added: only now is a change
                # sure to be seen (what tests and benchmarks wait for).
                announced = True
                self.status.update(watching=[str(p) for p in paths], error=None)
                log.info("watching %s", ", ".join(map(str, paths)))
            if not changes:
                if _outermost(r for r, _ in roots) != paths:
                    return  # a root came or went: watch the new set
                continue
            await self._apply(((change.name, path) for change, path in changes), roots)

    async def _apply(self, events: Iterable[Event], roots: list[tuple[Path, ItemType]]) -> None:
        targets = await asyncio.to_thread(rescan_targets, list(events), roots, _is_dir)
        if not targets:
            return
        try:
            await self._scans.rescan(targets)
        except Exception as exc:  # a bug in one rescan must not stop the watching
            log.exception("rescan of %d folders failed", len(targets))
            self.status.update(error=f"{type(exc).__name__}: {exc}")
        self._metrics.library_rescans.inc(len(targets))
        self.status.update(batches=self.status.batches + 1, rescans=self.status.rescans + len(targets),
                           last_batch_at=time.time())


def _is_dir(path: Path) -> bool:
    return path.is_dir()
