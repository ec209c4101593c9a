"""Probing ahead of the scan: the files of the units it reaches next, on a few threads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from revenge.library.probe import Probe

Stat = tuple[Path, int, int]  # (path, size, mtime_ns)


class ProbeAhead:
    """Probes the files of the units the scan will reach next on a few threads, while the scan's own
    thread writes the catalog: FFmpeg's probing and decoding and SQLite's writes release the GIL.
    Only files the scan would probe anyway are probed (``UnitScanner.to_probe``), at most
    ``window`` of them ahead; a result is used only for the file's size and mtime it was made from."""

    def __init__(self, probe: Callable[[Path], Probe], threads: int, window: int) -> None:
        self._probe = probe
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="revenge-probe")
        self._window = window
        self._pending: dict[Stat, Future[Probe]] = {}

    @property
    def room(self) -> bool:
        return len(self._pending) < self._window

    def offer(self, files: list[Stat]) -> None:
        for stat in files:
            self._pending[stat] = self._pool.submit(self._probe, stat[0])

    def take(self, path: Path, size: int, mtime: int) -> Future[Probe] | None:
        return self._pending.pop((path, size, mtime), None)

    def discard(self, files: Iterable[Path]) -> None:
        paths = set(files)
        for stat in [s for s in self._pending if s[0] in paths]:
            self._pending.pop(stat).cancel()

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
