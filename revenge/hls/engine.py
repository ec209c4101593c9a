"""The HLS engine the app holds: renditions, the segment cache, and a bounded encode scheduler.

* Single flight: one in-flight job per segment key; every concurrent request awaits that job.
* Two priorities: on-demand jobs always start before prefetch jobs.
* Admission: at most ``encode_queue_max`` on-demand jobs wait for a worker; one more is refused
  with :class:`EngineBusy` (the route answers 503 + Retry-After). Prefetch is only queued while no
  on-demand job waits, and queued prefetch is dropped first when on-demand work arrives.
* Cancellation: a request that goes away stops waiting; a queued job nobody waits for any more
  is abandoned, a running one finishes and its result is cached.
* Encodes run in a bounded :class:`ThreadPoolExecutor` (``encode_workers``); the job queue lives
  here, on the event loop, so the executor's own queue never holds more than the running jobs.
* Encoder runs (:mod:`revenge.hls.runs`): a segment continues the encoder its predecessor left
  suspended when they share a run. Jobs of one run never run at once (the second waits and then
  continues the first's encoder, or finds its segment cached: a fresh run for a segment in the
  middle of a run encodes, and caches, the run's earlier segments too). A timer closes the runs
  nobody continued for ``encoder_idle_seconds``, so a quiet server holds no idle encoders.

The encode and prepare functions are injectable so tests can count, gate or fail them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from revenge.config import Settings
from revenge.errors import Overloaded
from revenge.hls.bandwidth import declared_bandwidth, payload_rates
from revenge.hls.cache import SegmentCache, SegmentKey
from revenge.hls.gain import Gain
from revenge.hls.playlist import Variant
from revenge.hls.profiles import Profile
from revenge.hls.rendition import Rendition, prepare_rendition
from revenge.hls.runs import EncoderRuns, RunKey, expire_idle_runs, run_key
from revenge.hls.seek_index import SeekIndexes
from revenge.hls.sizes import RenditionKey, SegmentSizes
from revenge.library.model import Item

if TYPE_CHECKING:
    from revenge.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("revenge.hls")

# Segment ``index`` and any others encoded on the way (its run's earlier ones), by index.
EncodeFn = Callable[[Rendition, int], dict[int, bytes]]
PrepareFn = Callable[[Item, Profile, float, str, int], Rendition]

_EntryKey = tuple[str, str, str, Gain]  # item id, fingerprint, profile, gain
_RENDITIONS_KEPT = 1024  # prepared renditions remembered (each is a few hundred bytes)
# Suspended encoder runs kept (~0.7 MiB each for AAC): about one per listener on uncached audio.
_RUNS_KEPT = 128


class EngineBusy(Overloaded):
    """The on-demand encode queue is full: try again in a second."""

    code = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, "the encoder is busy; retry in a second")


@dataclass
class _Job:
    key: SegmentKey
    rendition: Rendition
    future: asyncio.Future[bytes]
    demand: bool
    waiters: int = 0
    started: bool = False


@dataclass
class _Entry:
    """A prepared rendition, its init segment, and its declared bandwidth with the number of measured
    segments it was worked out from."""

    rendition: Rendition
    init: bytes
    variant: Variant | None = None
    variant_known: int = -1


@dataclass
class EngineStats:
    encodes: int = 0  # jobs that ran (demand + prefetch)
    prefetch_encodes: int = 0
    encode_errors: int = 0
    rejected: int = 0  # on-demand requests refused with 503
    prefetch_dropped: int = 0
    abandoned: int = 0  # queued jobs whose every requester went away
    by_profile: dict[str, int] = field(default_factory=dict)


class HlsEngine:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None,
                 encode: EncodeFn | None = None, prepare: PrepareFn = prepare_rendition,
                 sizes: SegmentSizes | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = SegmentCache(settings.cache_mb * 1024 * 1024)
        # Without a database (tests, tools) the sizes measured are kept for this process only.
        self.sizes = sizes if sizes is not None else SegmentSizes(None)
        self._saving: set[asyncio.Task[None]] = set()
        self.seek_indexes = SeekIndexes()
        self.stats = EngineStats()
        self.runs = EncoderRuns(_RUNS_KEPT, settings.encoder_idle_seconds, self.seek_indexes)
        self._encode = encode if encode is not None else self.runs.encode
        self._prepare = prepare
        self._workers = settings.encode_workers
        self._queue_max = settings.encode_queue_max
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="hls-encode")
        # Preparing a rendition opens one encoder (~ms): its own thread so it never waits behind encodes.
        self._meta_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hls-prepare")
        self._inflight: dict[SegmentKey, _Job] = {}
        self._demand: deque[_Job] = deque()
        self._prefetch: deque[_Job] = deque()
        self._running: set[asyncio.Future[dict[int, bytes]]] = set()
        self._busy_runs: set[RunKey] = set()  # runs a running job is advancing
        self._entries: OrderedDict[_EntryKey, _Entry] = OrderedDict()
        self._preparing: dict[_EntryKey, asyncio.Future[_Entry]] = {}
        self._expiry: asyncio.Task[None] | None = None  # closes idle runs; from the first encode on
        self._closed = False
        self._chunks = 0  # progressive transcode chunks submitted and not done (run_encode)

    # ------------------------------------------------------------------ renditions

    async def entry(self, item: Item, profile: Profile, gain: Gain = 1.0) -> _Entry:
        """The prepared rendition of ``item`` in ``profile``, its samples scaled by ``gain``."""
        key = (item.id, item.fingerprint, profile.name, gain)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        pending = self._preparing.get(key)
        if pending is None:
            # A task of its own: a requester that goes away does not cancel it for the others.
            pending = asyncio.ensure_future(self._prepare_entry(key, item, profile))
            pending.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._preparing[key] = pending
        return await asyncio.shield(pending)

    async def _prepare_entry(self, key: _EntryKey, item: Item, profile: Profile) -> _Entry:
        try:
            rendition = await asyncio.get_running_loop().run_in_executor(
                self._meta_pool, self._prepare, item, profile, self.settings.segment_seconds,
                self.settings.aac_coder, self.settings.encoder_run_segments,
            )
            if key[3] != 1.0:
                rendition = dataclasses.replace(rendition, gain=key[3])
            await self.sizes.load(self._sizes_key(rendition), rendition.plan.count)
            entry = _Entry(rendition, rendition.init_segment())
            self._entries[key] = entry
            while len(self._entries) > _RENDITIONS_KEPT:
                self._entries.popitem(last=False)
            return entry
        finally:
            del self._preparing[key]

    async def rendition(self, item: Item, profile: Profile, gain: Gain = 1.0) -> Rendition:
        return (await self.entry(item, profile, gain)).rendition

    async def init_segment(self, item: Item, profile: Profile) -> bytes:
        return (await self.entry(item, profile)).init  # the same whatever the gain

    # ------------------------------------------------------------------ segments

    @staticmethod
    def key(rendition: Rendition, index: int) -> SegmentKey:
        return SegmentKey(rendition.item_id, rendition.fingerprint, rendition.key_name, index)

    @staticmethod
    def _sizes_key(rendition: Rendition) -> RenditionKey:
        return RenditionKey(rendition.item_id, rendition.fingerprint, rendition.key_name)

    def peek(self, rendition: Rendition, index: int) -> bytes | None:
        """The segment if it is cached (counted as a hit, next segments prefetched), else None:
        the hot path answers without creating any task."""
        data = self.cache.get(self.key(rendition, index))
        if data is not None:
            self._count_request("hit")
            self._schedule_prefetch(rendition, index)
        return data

    async def segment(self, rendition: Rendition, index: int, *, prefetch: bool = True) -> bytes:
        """Segment ``index`` (which must be in the plan): from the cache, from an encode already
        in flight, or from a new on-demand encode. Raises :class:`EngineBusy` when the queue is full."""
        if not 0 <= index < rendition.plan.count:
            raise IndexError(index)
        key = self.key(rendition, index)
        data = self.cache.get(key)
        if data is None:
            self._count_request("inflight" if key in self._inflight else "miss")
            data = await self._await_job(self._demand_job(key, rendition))
        else:
            self._count_request("hit")
        if prefetch:
            self._schedule_prefetch(rendition, index)
        return data

    def _demand_job(self, key: SegmentKey, rendition: Rendition) -> _Job:
        job = self._inflight.get(key)
        if job is not None:
            if not job.demand and not job.started:  # someone waits for it now: promote
                self._prefetch.remove(job)
                job.demand = True
                self._demand.append(job)
            return job
        if self._closed:
            raise EngineBusy("shutting down")
        if len(self._demand) >= self._queue_max:
            self.stats.rejected += 1
            raise EngineBusy(f"{len(self._demand)} encodes already waiting")
        job = self._new_job(key, rendition, demand=True)
        self._demand.append(job)
        # On-demand work arrived: queued prefetch makes room first.
        while self._prefetch and len(self._demand) + len(self._prefetch) > self._queue_max:
            self._drop(self._prefetch.pop())
        self._dispatch()
        return job

    def _count_request(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.segment_requests.labels(result).inc()

    def _timed_encode(self, rendition: Rendition, index: int) -> dict[int, bytes]:
        """Runs in an encode thread."""
        started = time.perf_counter()
        produced = self._encode(rendition, index)
        if self.metrics is not None:
            self.metrics.encode_seconds.labels(rendition.profile.name).observe(time.perf_counter() - started)
        return produced

    def _report_queue(self) -> None:
        if self.metrics is not None:
            gauge = self.metrics.encode_queue_depth
            gauge.labels("demand").set(len(self._demand))
            gauge.labels("prefetch").set(len(self._prefetch))
            gauge.labels("running").set(len(self._running))

    def _new_job(self, key: SegmentKey, rendition: Rendition, *, demand: bool) -> _Job:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # Failures of jobs nobody waits for (prefetch) must not be reported as never retrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        job = _Job(key, rendition, future, demand)
        self._inflight[key] = job
        return job

    def _drop(self, job: _Job) -> None:
        self._inflight.pop(job.key, None)
        job.future.cancel()
        if job.demand:
            self.stats.abandoned += 1
        else:
            self.stats.prefetch_dropped += 1
        if self.metrics is not None:
            self.metrics.encodes_dropped.labels("demand" if job.demand else "prefetch").inc()

    async def _await_job(self, job: _Job) -> bytes:
        job.waiters += 1
        try:
            return await asyncio.shield(job.future)
        finally:
            job.waiters -= 1
            if job.waiters == 0 and not job.started and not job.future.done():
                # Every requester went away before a worker picked it up: don't encode for nobody.
                with contextlib.suppress(ValueError):
                    self._demand.remove(job)
                self._drop(job)

    def _schedule_prefetch(self, rendition: Rendition, index: int) -> None:
        if self._closed or self._demand:
            return  # the pool is saturated with requests people wait for
        last = min(rendition.plan.count, index + 1 + self.settings.prefetch_segments)
        added = False
        for ahead in range(index + 1, last):
            if len(self._prefetch) >= self._queue_max:
                break
            key = SegmentKey(rendition.item_id, rendition.fingerprint, rendition.key_name, ahead)
            if key in self.cache or key in self._inflight:
                continue
            self._prefetch.append(self._new_job(key, rendition, demand=False))
            added = True
        if added:
            self._dispatch()

    def _next_job(self) -> _Job | None:
        """The first queued job (on-demand before prefetch) whose encoder run is not busy."""
        for queue in (self._demand, self._prefetch):
            for job in queue:
                if run_key(job.rendition, job.key.index) not in self._busy_runs:
                    queue.remove(job)
                    return job
        return None

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._running) < self._workers and (job := self._next_job()) is not None:
            job.started = True
            cached = self.cache.get(job.key)
            if cached is not None:  # encoded on the way to a later segment of its run
                self._settle(job, cached)
                continue
            self.stats.encodes += 1
            if not job.demand:
                self.stats.prefetch_encodes += 1
            name = job.rendition.profile.name
            self.stats.by_profile[name] = self.stats.by_profile.get(name, 0) + 1
            run = run_key(job.rendition, job.key.index)
            self._busy_runs.add(run)
            running = loop.run_in_executor(self._pool, self._timed_encode, job.rendition, job.key.index)
            self._running.add(running)
            running.add_done_callback(lambda done, job=job, run=run: self._finished(job, run, done))
            self._start_expiry()
        self._report_queue()

    def _settle(self, job: _Job, data: bytes) -> None:
        if self._inflight.get(job.key) is job:
            del self._inflight[job.key]
        if not job.future.done():
            job.future.set_result(data)

    def _finished(self, job: _Job, run: RunKey, done: asyncio.Future[dict[int, bytes]]) -> None:
        self._running.discard(done)
        self._busy_runs.discard(run)
        if self._inflight.get(job.key) is job:
            del self._inflight[job.key]
        if done.cancelled():
            job.future.cancel()
        elif (exc := done.exception()) is not None:
            self.stats.encode_errors += 1
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            produced = done.result()
            for index, extra in produced.items():  # the run's earlier segments, encoded on the way
                if index != job.key.index:
                    self.cache.put(self.key(job.rendition, index), extra)
                self._measured(job.rendition, index, len(extra))
            data = produced[job.key.index]
            self.cache.put(job.key, data)
            if not job.future.done():
                job.future.set_result(data)
        if not self._closed:
            self._dispatch()
        self._report_queue()

    def cancel_prefetch(self, item_id: str) -> int:
        """Drop the queued (not yet running) prefetches of ``item_id``: its listener is gone (the
        playback session ended). Running encodes finish and are cached. Returns how many were dropped."""
        doomed = [job for job in self._prefetch if job.key.item_id == item_id]
        for job in doomed:
            self._prefetch.remove(job)
            self._drop(job)
        if doomed:
            self._report_queue()
        return len(doomed)

    @property
    def queued(self) -> tuple[int, int]:
        """(on-demand, prefetch) jobs waiting for a worker."""
        return len(self._demand), len(self._prefetch)

    @property
    def running(self) -> int:
        return len(self._running)

    async def run_encode(self, work: Callable[[], T]) -> T:
        """``work`` (a progressive transcode's next chunk) on the encode workers; ``EngineBusy`` when
        the on-demand queue is full, as for a segment, so both kinds of listener share one bound."""
        waiting = len(self._demand) + self._chunks
        if self._closed or waiting >= self._queue_max:
            raise EngineBusy(f"on-demand encode queue full ({waiting})")
        self._chunks += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self._chunks -= 1

    # ------------------------------------------------------------------ variants

    async def variant(self, item: Item, profile: Profile) -> Variant:
        """The variant's declared bandwidth: from the sizes of its segments encoded so far, the rest
        predicted from the codec's settings (``hls.bandwidth``). Nothing is encoded for it, so a
        multivariant playlist answers as soon as its renditions are prepared."""
        entry = await self.entry(item, profile)
        rendition = entry.rendition
        key = self._sizes_key(rendition)
        known = self.sizes.known(key)
        if entry.variant is None or entry.variant_known != known:
            plan = rendition.plan
            sizes = self.sizes.sizes(key) or [0] * plan.count
            rates = payload_rates(rendition.format, item.codec, item.bit_rate)
            peak, average = declared_bandwidth(plan, rates, sizes, rendition.last_duration is not None)
            entry.variant = Variant(profile.name, peak, average, profile.codecs)
            entry.variant_known = known
        return entry.variant

    def _measured(self, rendition: Rendition, index: int, size: int) -> None:
        key = self._sizes_key(rendition)
        if self.sizes.add(key, index, size) and not self._closed:
            task = asyncio.get_running_loop().create_task(self.sizes.save(key), name="hls-sizes-save")
            self._saving.add(task)
            task.add_done_callback(self._saving.discard)

    # ------------------------------------------------------------------ idle runs

    def _start_expiry(self) -> None:
        if self._expiry is None and not self._closed:
            self._expiry = asyncio.get_running_loop().create_task(
                expire_idle_runs(self.runs, self.settings.encoder_idle_seconds, self._meta_pool),
                name="hls-run-expiry")

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Drop queued work, let running encodes finish, stop the threads and close the runs."""
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        for job in [*self._demand, *self._prefetch]:
            self._drop(job)
        self._demand.clear()
        self._prefetch.clear()
        if self._running:
            await asyncio.wait(set(self._running), timeout=30)
        for preparing in list(self._preparing.values()):
            preparing.cancel()
        await asyncio.gather(*self._preparing.values(), return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._meta_pool.shutdown(wait=True, cancel_futures=True)
        self.runs.close()
        if self._saving:
            await asyncio.wait(set(self._saving))
        await self.sizes.close()
