"""``ProbePool``: probe files on worker processes ahead of the scan, which takes the results in its order.

Probing (PyAV's demuxers, mutagen's tag parsers, the tail decode) is most of a full scan's work and
holds the GIL (threads lost to it: session 6), so it runs in processes. They are *spawned*, never
forked: the server scans from a thread of a process whose other threads may hold locks a fork would
copy held. Spawning costs each worker an interpreter and the imports (a fraction of a second), so a
scan starts the pool only once it has ``MIN_POOLED`` files to probe; a rescan that probes nothing
never starts one.

A worker that dies (a demuxer crashing on a damaged file) breaks the pool for every file in flight.
The file being waited for is then probed again alone, in a process of its own: if that one dies too,
the file is the cause and fails with the reason; either way a fresh pool takes the files still ahead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from revenge.library.probe import Probe, ProbeError, probe_file

log = logging.getLogger("revenge.scan")

MIN_POOLED = 64  # files to probe before a pool is worth its start-up
CHUNK = 8  # files per task: one hand-off each way per chunk, not per file (a hand-off costs as much)
AHEAD_PER_WORKER = 3  # chunks in flight per worker: enough to hide the hand-off, little memory

ProbeFunction = Callable[[Path, Sequence[str]], Probe]
Outcome = Probe | Exception  # a chunk's answer per file: the probe, or what it raised


def probe_chunk(probe: ProbeFunction, paths: Sequence[Path], separators: Sequence[str]) -> list[Outcome]:
    """Run in a worker: probe each file, answering what it raised instead of raising."""
    outcomes: list[Outcome] = []
    for path in paths:
        try:
            outcomes.append(probe(path, separators))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


class ProbePool:
    """Probes ``submit``-ted files on ``workers`` processes (0: none), ``CHUNK`` files a task;
    ``result`` answers in any order the caller asks, probing inline a file never submitted. Not
    thread-safe: one scanning thread owns it."""

    def __init__(self, workers: int, artist_separators: Sequence[str] = (),
                 probe: ProbeFunction = probe_file, min_pooled: int | None = None) -> None:
        self.workers = workers
        self._separators = tuple(artist_separators)
        self._probe = probe  # a module-level function: the workers import it by name
        self._min_pooled = MIN_POOLED if min_pooled is None else min_pooled
        self._executor: ProcessPoolExecutor | None = None
        self._gathering: list[Path] = []  # submitted, not yet handed to a worker
        self._chunks: dict[Path, tuple[Future[list[Outcome]], int]] = {}  # handed over: (task, index)
        self._answered = False  # a worker has answered
        self._can_run: bool | None = None  # see _workers_can_run

    @property
    def in_flight(self) -> int:
        return len(self._chunks) + len(self._gathering)

    @property
    def capacity(self) -> int:
        """How many files (or units) the caller may have ahead before it takes a result: before the
        pool starts, enough to start it."""
        if self.workers < 1:
            return 0
        if self._executor is None:
            return self._min_pooled
        return self.workers * AHEAD_PER_WORKER * CHUNK

    def submit(self, path: Path) -> None:
        if self.workers < 1 or path in self._chunks or path in self._gathering:
            return
        self._gathering.append(path)
        if self._executor is None:
            if len(self._gathering) < self._min_pooled:
                return
            self._executor = self._new_executor(self.workers)
        while len(self._gathering) >= CHUNK:
            self._hand_over(CHUNK)

    def result(self, path: Path) -> Probe:
        """The probe of ``path``: raises ProbeError like ``probe_file``."""
        if path in self._gathering:
            if self._executor is None:
                self._gathering.remove(path)
                return self._probe(path, self._separators)
            self._hand_over(len(self._gathering))
        handed = self._chunks.pop(path, None)
        if handed is None:
            return self._probe(path, self._separators)
        future, index = handed
        try:
            outcome = future.result()[index]
        except BrokenProcessPool:
            return self._after_crash(path)
        self._answered = True
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def forget(self, path: Path) -> None:
        """``path`` was submitted but its probe is not needed (its unit turned out not to need it)."""
        self._chunks.pop(path, None)  # the rest of its chunk is still wanted
        if path in self._gathering:
            self._gathering.remove(path)

    def close(self) -> None:
        self._chunks.clear()
        self._gathering.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _hand_over(self, count: int) -> None:
        assert self._executor is not None
        paths, self._gathering = self._gathering[:count], self._gathering[count:]
        future = self._executor.submit(probe_chunk, self._probe, paths, self._separators)
        for index, path in enumerate(paths):
            self._chunks[path] = (future, index)

    def _new_executor(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def _workers_can_run(self) -> bool:
        """Whether a worker process starts and answers at all (asked once, after the first crash
        before any probe came back: a program that starts the pool from an unguarded main module,
        or a system that cannot spawn, would otherwise fail every file)."""
        if self._can_run is None:
            probe = self._new_executor(1)
            try:
                self._can_run = probe.submit(os.getpid).result() > 0
            except (BrokenProcessPool, OSError):
                self._can_run = False
            finally:
                probe.shutdown(wait=False, cancel_futures=True)
        return self._can_run

    def _after_crash(self, path: Path) -> Probe:
        ahead = list(self._chunks)
        self._chunks.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        if not self._answered and not self._workers_can_run():
            log.error("probe worker processes cannot run here: probing in the scanning thread")
            self.workers = 0
            return self._probe(path, self._separators)
        log.warning("a probe worker died; probing %s again on its own", path)
        alone = self._new_executor(1)
        try:
            outcome = alone.submit(probe_chunk, self._probe, [path], self._separators).result()[0]
        except BrokenProcessPool:
            raise ProbeError("the probe crashed on this file (its demuxer or tag reader died)") from None
        finally:
            alone.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor(self.workers)
        self._gathering = ahead + self._gathering
        while self._gathering:
            self._hand_over(CHUNK)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
