"""Suspended encoder runs the engine continues from one request to the next.

A :class:`~revenge.hls.transcode.SegmentRun` encodes a fixed run of segments with one encoder. When a
player asks for segment *n* and then *n + 1*, the second request continues the encoder the first one
left off instead of starting a fresh one (which is ~1.5x slower over a segment for AAC). This table
keeps those runs between requests: keyed by (item, fingerprint, profile, run), bounded, and aged
out, since each holds an open encoder (~0.7 MiB for AAC).

Thread-safe: encode threads take a run out of the table, advance it and put it back. The engine never
has two jobs of one run running at once, so a run is never advanced by two threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from revenge.hls.rendition import Rendition
from revenge.hls.seek_index import SeekIndexes
from revenge.hls.transcode import SegmentRun

RunKey = tuple[str, str, str, int]

# A run nobody continued for this long belongs to a listener who left or seeked away.
RUN_IDLE_SECONDS = 120.0


def run_key(rendition: Rendition, index: int) -> RunKey:
    """The run segment ``index`` belongs to."""
    return (rendition.item_id, rendition.fingerprint, rendition.profile.name,
            index // rendition.run_segments)


class EncoderRuns:
    """The suspended runs. ``indexes``: the MP3 seek points every run decodes with."""

    def __init__(self, max_runs: int, indexes: SeekIndexes | None = None) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self._max_runs = max_runs
        self._indexes = indexes
        self._lock = threading.Lock()
        self._runs: OrderedDict[RunKey, tuple[SegmentRun, float]] = OrderedDict()  # oldest use first
        self.continued = 0  # segments encoded by continuing a suspended run
        self.started = 0  # runs started

    def __len__(self) -> int:
        return len(self._runs)

    def encode(self, rendition: Rendition, index: int) -> dict[int, bytes]:
        """Segment ``index`` by continuing its run when one is suspended before it, else by a fresh
        run from the run's first segment: every segment produced on the way, by index, ``index``
        last (the ones before it are the run's earlier segments, for the cache)."""
        key = run_key(rendition, index)
        with self._lock:
            entry = self._runs.pop(key, None)
        run = entry[0] if entry is not None else None
        if run is None or run.next_index > index:
            run = SegmentRun(rendition, index, self._indexes)
            self.started += 1
        elif run.next_index == index:
            self.continued += 1
        produced = run.advance(index)
        now = time.monotonic()
        with self._lock:
            if not run.done:
                self._runs[key] = (run, now)
            self._evict(now)
        return produced

    def _evict(self, now: float) -> None:
        """Under the lock: the oldest runs beyond the bound, and any left idle too long."""
        while self._runs:
            key, (_, used) = next(iter(self._runs.items()))
            if len(self._runs) <= self._max_runs and now - used < RUN_IDLE_SECONDS:
                break
            del self._runs[key]
