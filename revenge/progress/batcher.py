"""Group commit for progress updates.

Each request enqueues its update and awaits a future. One flusher task takes what is queued — up to
``progress_batch_max`` updates, waiting at most ``progress_batch_window_ms`` after the oldest queued one
arrived — and applies it to the store in one round trip; each future is resolved only after the store
returned, so an answered request is an applied (durable) update. While a batch is in flight new updates
queue up and go in the next one, so under load the window costs nothing: batches just get bigger.

The queue is FIFO and only one batch is in flight at a time, so updates to the same key are applied in
arrival order, across batches too. A store error fails the requests of that batch (``StoreUnavailable``,
answered 503 + Retry-After); the flusher lives on, so the service recovers by itself when the store
does. Past ``progress_queue_max`` queued updates, ``submit`` refuses at once (``BatcherOverloaded``,
also a 503) instead of queueing without bound.

With a ``StoreGuard`` (the service always gives one), a hung or dead store cannot make requests wait:

* a batch in flight gets ``store_timeout_seconds`` (the guard's timeout) to be applied, and an update
  that has waited one window plus that timeout, queued or in flight, is answered ``StoreUnavailable``
  then, whatever the queue holds (it may still be applied, but it was not acknowledged);
* a failed batch opens the guard's circuit: the updates queued behind it fail at once instead of each
  batch waiting its own timeout, and ``enqueue`` refuses new ones until a probe finds the store back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from revenge.errors import Overloaded, StoreUnavailable
from revenge.progress.guard import StoreGuard
from revenge.progress.model import ProgressState, ProgressUpdate
from revenge.progress.store import ProgressStore

log = logging.getLogger("revenge.progress")


class BatcherOverloaded(Overloaded):
    """The queue is full: the update was not accepted (answer 503, the client retries)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "too many progress updates waiting; retry shortly")


class BatcherClosed(StoreUnavailable):
    """The server is shutting down: the update was not accepted."""


@dataclass(slots=True)
class _Pending:
    update: ProgressUpdate
    future: asyncio.Future[ProgressState]
    enqueued: float  # loop time


@dataclass
class BatchStats:
    """Counters for /metrics and benchmarks (no global state: one per batcher)."""

    batches: int = 0
    updates: int = 0
    failed_batches: int = 0
    rejected: int = 0  # refused: queue full, or the store known down
    expired: int = 0  # answered 503 after waiting their limit
    largest_batch: int = 0


class ProgressBatcher:
    def __init__(self, store: ProgressStore, batch_max: int, window_ms: float, queue_max: int,
                 on_flush: Callable[[int, float, bool], None] | None = None, *,
                 guard: StoreGuard | None = None) -> None:
        """``on_flush(size, seconds, ok)`` is called after every store round trip (metrics)."""
        if batch_max < 1 or queue_max < batch_max or window_ms < 0:
            raise ValueError("need 1 <= batch_max <= queue_max and window_ms >= 0")
        self._store = store
        self._guard = guard
        # How long an update may wait for its answer, from when it was queued.
        self._limit = None if guard is None else window_ms / 1000.0 + guard.timeout
        self._in_flight: list[_Pending] = []
        self._expiry: asyncio.TimerHandle | None = None
        self._batch_max = batch_max
        self._window = window_ms / 1000.0
        self._queue_max = queue_max
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()  # set when the queue becomes non-empty, or on close
        self._full = asyncio.Event()  # set when a whole batch is waiting, or on close
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # The loop, looked up once in start() rather than on every enqueue (the hot path).
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = BatchStats()
        self._on_flush = on_flush

    @property
    def queue_max(self) -> int:
        return self._queue_max

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Start the flusher on the running loop (before anything is enqueued)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name="progress-batcher")

    async def close(self) -> None:
        """Stop accepting, apply what is queued, stop the flusher."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None

    def enqueue(self, updates: Sequence[ProgressUpdate]) -> list[asyncio.Future[ProgressState]]:
        """Queue ``updates`` back to back (all or none) and return one future each."""
        if self._closing:
            raise BatcherClosed("progress service is shutting down")
        if self._guard is not None and self._guard.is_down:
            self.stats.rejected += len(updates)
            raise self._guard.down_error()
        if len(self._queue) + len(updates) > self._queue_max:
            self.stats.rejected += len(updates)
            raise BatcherOverloaded(f"progress queue is full ({self._queue_max} updates waiting)")
        loop = self._loop
        if loop is None:
            raise RuntimeError("ProgressBatcher.enqueue before start()")
        now = loop.time()
        futures = []
        for update in updates:
            future: asyncio.Future[ProgressState] = loop.create_future()
            self._queue.append(_Pending(update, future, now))
            futures.append(future)
        self._wakeup.set()
        if len(self._queue) >= self._batch_max:
            self._full.set()
        return futures

    async def submit(self, update: ProgressUpdate) -> ProgressState:
        """Apply one update through the next batch; returns its state once the store has it."""
        (future,) = self.enqueue([update])
        return await future

    async def _wait_for_batch(self) -> None:
        """Return when a full batch is queued or the oldest queued update has waited the window."""
        loop = self._loop
        assert loop is not None  # the flusher runs only after start()
        while len(self._queue) < self._batch_max and not self._closing:
            remaining = self._queue[0].enqueued + self._window - loop.time()
            if remaining <= 0:
                return
            self._full.clear()
            timer = loop.call_later(remaining, self._full.set)
            try:
                await self._full.wait()
            finally:
                timer.cancel()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_batch()
            count = min(self._batch_max, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            if not self._queue:
                self._full.clear()
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        guard = self._guard
        if guard is None:
            await self._apply(batch)
            return
        if guard.is_down:
            self._fail_all(batch)
            return
        self._in_flight = batch
        self._expire()  # what has already waited its limit is not sent
        batch = self._in_flight = [p for p in batch if not p.future.done()]
        if not batch:
            return
        self._arm_expiry()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(guard.timeout):
                await self._apply(batch)
        except TimeoutError:
            error = guard.timed_out()
            self.stats.failed_batches += 1
            self._report(len(batch), started, False)
            guard.failed(error)
            self._fail(batch, error)
        finally:
            self._in_flight = []
            if self._expiry is not None:
                self._expiry.cancel()
                self._expiry = None
        if guard.is_down and self._queue:
            self._fail_all([])

    def _fail_all(self, batch: list[_Pending]) -> None:
        """The store is known down: ``batch`` and everything queued behind it fail now, rather than each
        batch waiting for its own timeout."""
        assert self._guard is not None
        batch.extend(self._queue)
        self._queue.clear()
        self.stats.failed_batches += 1
        self._fail(batch, self._guard.down_error())

    async def _apply(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            states = await self._store.apply_batch([p.update for p in batch])
            if len(states) != len(batch):
                raise RuntimeError(f"store returned {len(states)} states for {len(batch)} updates")
        except Exception as exc:
            self._report(len(batch), started, False)
            # StoreUnavailable is the expected outage; anything else is a bug, but the requests of this
            # batch still get an answer and the flusher lives on for the next batch.
            self.stats.failed_batches += 1
            if isinstance(exc, StoreUnavailable):
                if self._guard is not None:
                    self._guard.failed(exc)
            else:
                log.exception("progress batch failed")
            self._fail(batch, exc)
            return
        self._report(len(batch), started, True)
        self.stats.batches += 1
        self.stats.updates += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for pending, state in zip(batch, states, strict=True):
            if not pending.future.done():
                pending.future.set_result(state)

    def _report(self, size: int, started: float, ok: bool) -> None:
        if self._on_flush is not None:
            self._on_flush(size, time.perf_counter() - started, ok)

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                # One exception object per waiter: raising a shared one in many tasks would keep
                # growing its traceback.
                error = type(exc)(str(exc)) if isinstance(exc, StoreUnavailable) else exc
                pending.future.set_exception(error)
                # A caller that went away must not leave "exception never retrieved" noise behind.
                pending.future.add_done_callback(_consume)

    def _expire(self) -> None:
        """Answer ``StoreUnavailable`` to every update, in flight or queued, that has waited its limit."""
        assert self._loop is not None and self._limit is not None and self._guard is not None
        oldest_allowed = self._loop.time() - self._limit
        expired: list[_Pending] = []
        if self._in_flight and self._in_flight[0].enqueued <= oldest_allowed:  # FIFO: the oldest first
            expired = [p for p in self._in_flight if p.enqueued <= oldest_allowed and not p.future.done()]
        while self._queue and self._queue[0].enqueued <= oldest_allowed:
            expired.append(self._queue.popleft())
        if expired:
            self.stats.expired += len(expired)
            self._fail(expired, self._guard.timed_out())

    def _arm_expiry(self) -> None:
        """Call ``_on_expiry`` when the oldest update still waiting reaches its limit."""
        assert self._loop is not None and self._limit is not None
        waiting = next((p for p in self._in_flight if not p.future.done()), None)
        if waiting is None and self._queue:
            waiting = self._queue[0]
        if waiting is not None:
            self._expiry = self._loop.call_at(waiting.enqueued + self._limit, self._on_expiry)

    def _on_expiry(self) -> None:
        self._expiry = None
        self._expire()
        self._arm_expiry()


def _consume(future: asyncio.Future[ProgressState]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        future.exception()
