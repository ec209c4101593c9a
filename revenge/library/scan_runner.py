"""``ScanRunner``: library scans in a background thread, one at a time, started when the server starts
and on request (an admin's ``POST /api/v1/library/scan``), stopped with the app. The library watcher's
rescans of a few folders (``rescan``) take turns with them: never two writers on the catalog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import TypeVar

from revenge.config import Settings
from revenge.library.catalog import Catalog
from revenge.library.changes import Target
from revenge.library.rescan import rescan_folders
from revenge.library.scan import UnitHook, scan_library
from revenge.library.scan_status import ScanReport, ScanStatus

log = logging.getLogger("revenge.library")


class ScanRunner:
    def __init__(self, settings: Settings, catalog: Catalog, status: ScanStatus,
                 on_unit: UnitHook | None = None) -> None:
        self._settings = settings
        self._on_unit = on_unit
        self._catalog = catalog
        self.status = status
        self._task: asyncio.Task[object] | None = None
        self._turn = asyncio.Lock()  # a full scan or a rescan: one at a time

    @property
    def has_folders(self) -> bool:
        s = self._settings
        return bool(s.library + s.podcasts + s.audiobooks)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start a scan unless one is running (then ``False``). The server answers while it runs;
        items appear as they are probed."""
        if self.running or not self.has_folders:
            return False
        self.status.queued()  # /healthz says "running" before the thread gets to start
        self._task = asyncio.create_task(self._full(), name="library-scan")
        return True

    async def _full(self) -> object:
        async with self._turn:
            return await _finished(asyncio.to_thread(self._scan))

    async def rescan(self, targets: Sequence[Target]) -> ScanReport | None:
        """Rescan these folders after any scan running now (blocking the caller, not the loop)."""
        if not targets:
            return None
        async with self._turn:
            return await _finished(asyncio.to_thread(rescan_folders, self._settings, self._catalog,
                                                     targets, self._on_unit))

    def _scan(self) -> object:
        try:
            return scan_library(self._settings, self._catalog, self.status, on_unit=self._on_unit)
        except Exception:
            log.exception("library scan failed")
            raise

    async def aclose(self) -> None:
        if self._task is not None:
            self.status.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        async with self._turn:  # a rescan's thread has finished: the catalog may close
            pass


_T = TypeVar("_T")


async def _finished(work: Coroutine[object, object, _T]) -> _T:
    """Await ``work`` (a thread); cancelled, still wait for the thread before going: it writes the
    catalog, which closes after us."""
    future = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise
