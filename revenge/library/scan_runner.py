"""``ScanRunner``: library scans in a background thread, one at a time, started when the server starts
and on request (an admin's ``POST /api/v1/library/scan``), stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from revenge.config import Settings
from revenge.library.catalog import Catalog
from revenge.library.scan import ScanStatus, UnitHook, scan_library

log = logging.getLogger("revenge.library")


class ScanRunner:
    def __init__(self, settings: Settings, catalog: Catalog, status: ScanStatus,
                 on_unit: UnitHook | None = None) -> None:
        self._settings = settings
        self._on_unit = on_unit
        self._catalog = catalog
        self.status = status
        self._task: asyncio.Task[object] | None = None

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
        self._task = asyncio.create_task(asyncio.to_thread(self._scan), name="library-scan")
        return True

    def _scan(self) -> object:
        try:
            return scan_library(self._settings, self._catalog, self.status, on_unit=self._on_unit)
        except Exception:
            log.exception("library scan failed")
            raise

    async def aclose(self) -> None:
        if self._task is None:
            return
        self.status.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
