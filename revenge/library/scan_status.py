"""The progress of a library scan (shown by /healthz and the scan command's progress bar) and its
report."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


class ScanStatus:
    """Thread-safe progress of the current (or last) scan, shown by /healthz."""

    _COUNTERS = ("files_seen", "probed", "unchanged", "failed", "items_added", "items_updated",
                 "items_moved", "items_removed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._running = False
        self._phase = "idle"
        self._counts = dict.fromkeys(self._COUNTERS, 0)
        self._files_total: int | None = None
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._cancelled = False
        self._error: str | None = None

    def queued(self) -> None:
        """A scan will start soon (its thread is being scheduled): report running from now on."""
        with self._lock:
            self._running = True
            self._phase = "queued"

    def begin(self) -> bool:
        """Start a scan; False if one is already scanning."""
        with self._lock:
            if self._phase not in ("idle", "queued"):
                return False
            self._running = True
            self._phase = "counting"
            self._counts = dict.fromkeys(self._COUNTERS, 0)
            self._files_total = None
            self._started_at = time.time()
            self._finished_at = None
            self._cancelled = False
            self._error = None
            return True

    def set_phase(self, phase: str, files_total: int | None = None) -> None:
        with self._lock:
            self._phase = phase
            if files_total is not None:
                self._files_total = files_total

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counts[name] += n

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            self._running = False
            self._phase = "idle"
            self._finished_at = time.time()
            self._cancelled = self._cancel.is_set()
            self._error = error
            self._cancel.clear()

    def cancel(self) -> None:
        """Ask the running scan to stop; it stops after the file it is probing."""
        with self._lock:
            if self._running:
                self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "running": self._running,
                "phase": self._phase,
                "files_total": self._files_total,
                **self._counts,
                "started_at": self._started_at,
                "finished_at": self._finished_at,
                "cancelled": self._cancelled,
                "error": self._error,
            }


@dataclass
class ScanReport:
    files_seen: int = 0
    probed: int = 0
    unchanged: int = 0
    failed: int = 0
    items_added: int = 0
    items_updated: int = 0
    items_moved: int = 0  # kept their id at a new path (library/identity)
    items_removed: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first few (path, reason)
    incomplete_roots: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.files_seen / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"Scanned {self.files_seen} files in {self.seconds:.1f} s ({rate:.0f} files/s): "
            f"{self.probed} probed, {self.unchanged} unchanged, {self.failed} failed.",
            f"Items: {self.items_added} added, {self.items_updated} updated, {self.items_moved} moved, "
            f"{self.items_removed} removed.",
        ]
        if self.cancelled:
            lines.append("The scan was cancelled: nothing was removed.")
        for root in self.incomplete_roots:
            lines.append(f"Not fully readable, its items were kept: {root}")
        if self.failed:
            lines.append(f"Failed files ({self.failed}; all of them: GET /api/v1/library/failures):")
            lines.extend(f"  {path}: {reason}" for path, reason in self.failures)
            if self.failed > len(self.failures):
                lines.append(f"  … and {self.failed - len(self.failures)} more")
        return "\n".join(lines)


class ProgressBar:
    """One line on a terminal, redrawn at most 10 times a second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last = 0.0
        self._started = time.monotonic()

    def draw(self, status: dict[str, Any], current: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        width = shutil.get_terminal_size((100, 20)).columns
        seen, total = status["files_seen"], status["files_total"] or 0
        rate = seen / max(now - self._started, 1e-6)
        fraction = min(seen / total, 1.0) if total else 0.0
        bar = "#" * int(fraction * 24)
        text = (f"\r[{bar:<24}] {seen}/{total} files {rate:5.0f}/s  probed {status['probed']} "
                f"unchanged {status['unchanged']} failed {status['failed']}  ")
        room = width - len(text) - 1
        if room > 10:
            text += current[-room:] if len(current) > room else current
        self._out.write(text[:width - 1].ljust(width - 1))
        self._out.flush()

    def close(self) -> None:
        self._out.write("\n")
        self._out.flush()
