"""Suspended encoder runs the engine continues from one request to the next.

A :class:`~revenge.hls.transcode.SegmentRun` encodes a fixed run of segments with one encoder. When a
player asks for segment *n* and then *n + 1*, the second request continues the encoder the first one
left off instead of starting a fresh one (which is ~1.5x slower over a segment for AAC). This table
keeps those runs between requests: keyed by (item, fingerprint, profile, run), bounded, and closed
once idle, since each holds an open encoder (~0.7 MiB and two native threads for AAC). The engine
calls :meth:`EncoderRuns.expire` on a timer, so idle runs are closed even when no encode follows.

Thread-safe: encode threads take a run out of the table, advance it and put it back. The engine never
has two jobs of one run running at once, so a run is never advanced by two threads, and a run being
advanced is not in the table, so expiry never closes it under an encode.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor

from revenge.hls.rendition import Rendition
from revenge.hls.seek_index import SeekIndexes
from revenge.hls.transcode import SegmentRun

RunKey = tuple[str, str, str, int]


def run_key(rendition: Rendition, index: int) -> RunKey:
    """The run segment ``index`` belongs to."""
    return (rendition.item_id, rendition.fingerprint, rendition.key_name,
            index // rendition.run_segments)


class EncoderRuns:
    """The suspended runs. ``idle_seconds``: a run nobody continued for this long belongs to a
    listener who left or seeked away. ``indexes``: the MP3 seek points every run decodes with."""

    def __init__(self, max_runs: int, idle_seconds: float, indexes: SeekIndexes | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        if idle_seconds <= 0:
            raise ValueError("idle_seconds must be positive")
        self._max_runs = max_runs
        self._idle = idle_seconds
        self._indexes = indexes
        self._clock = clock
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
            if run is not None:
                run.close()
            run = SegmentRun(rendition, index, self._indexes)
            self.started += 1
        elif run.next_index == index:
            self.continued += 1
        try:
            produced = run.advance(index)
        except BaseException:
            run.close()
            raise
        if run.done:
            run.close()
        else:
            with self._lock:
                self._runs[key] = (run, self._clock())
        for old in self._expired(self._clock()):
            old.close()
        return produced

    def expire(self) -> int:
        """Close the runs left idle for ``idle_seconds`` (and any beyond the bound); how many."""
        evicted = self._expired(self._clock())
        for run in evicted:
            run.close()
        return len(evicted)

    def close(self) -> None:
        """Close every suspended run (the engine is shutting down)."""
        with self._lock:
            runs = [run for run, _ in self._runs.values()]
            self._runs.clear()
        for run in runs:
            run.close()

    def _expired(self, now: float) -> list[SegmentRun]:
        """Take out the oldest runs beyond the bound, and any left idle too long (closed by the
        caller outside the lock)."""
        out = []
        with self._lock:
            while self._runs:
                key, (run, used) = next(iter(self._runs.items()))
                if len(self._runs) <= self._max_runs and now - used < self._idle:
                    break
                del self._runs[key]
                out.append(run)
        return out


async def expire_idle_runs(runs: EncoderRuns, idle_seconds: float, executor: Executor) -> None:
    """Until cancelled: close the suspended runs nobody continued for ``idle_seconds``. Each holds an
    encoder and its native threads, which otherwise stay until some later encode evicts them."""
    # Twice per idle period: a run is closed between 1x and 1.5x the idle time after its last use.
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(idle_seconds / 2)
        if len(runs):
            # Freeing an encoder joins its threads: off the event loop, in the executor given.
            await loop.run_in_executor(executor, runs.expire)
