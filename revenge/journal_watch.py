"""``Journal``: a store's journal files (``revenge.journal``) with the watching of its server.

``append`` groups the batches that arrive while an fsync runs into the next one (group commit). A task
checks the server's mark every ``CHECK_INTERVAL_S`` (and so does every probe of an outage, ``check``): a
completed snapshot trims the journal, a restart from a snapshot starts the replay (``replay_chunk``,
the store's own re-apply, in journal order, ``chunk`` entries at a time, retried until the server
takes them). While a replay runs, ``replaying`` is true: the store's probe says it is unavailable, and
the writes that go through ``writing()`` wait for it, so an older entry replayed never overwrites a
newer write; ``writing()`` also holds the replay back until the writes under way are journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from revenge.errors import StoreUnavailable
from revenge.journal import JournalFiles, ServerMark, decide, snapshot_point_ms

log = logging.getLogger("revenge.journal")

CHECK_INTERVAL_S = 1.0
REPLAY_CHUNK = 512

T = TypeVar("T")


class Journal(Generic[T]):
    def __init__(self, files: JournalFiles[T], name: str, server_mark: Callable[[], Awaitable[ServerMark]],
                 replay_chunk: Callable[[Sequence[T]], Awaitable[object]], timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, chunk: int = REPLAY_CHUNK) -> None:
        self.files = files
        self._chunk = chunk  # entries per replay_chunk call, which must end within the store timeout
        self.name = name
        self._server_mark = server_mark
        self._replay_chunk = replay_chunk
        self._timeout_s = timeout_seconds
        self._timeout_ms = round(timeout_seconds * 1000)
        self._interval = check_interval
        self._lock = asyncio.Lock()  # appends, rotations and trims, one at a time
        self._checking = asyncio.Lock()  # one look at the server's mark at a time
        self._pending: list[tuple[int, Sequence[T], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._mark: dict[str, Any] | None = None
        self._replay: asyncio.Task[None] | None = None
        self._gate: asyncio.Future[None] | None = None  # set from a replay's start to its end
        self._writers = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._watch: asyncio.Task[None] | None = None
        self.replayed = 0  # entries replayed so far (tests, logs)
        self.trimmed = 0

    @property
    def replaying(self) -> bool:
        return self._gate is not None

    async def open(self) -> None:
        """Open the files and look at the server (its store is open): a replay due runs before this
        returns."""
        await asyncio.to_thread(self.files.open)
        try:
            self._mark = await asyncio.to_thread(self.files.read_mark)
            await self.check_mark()
            if self._replay is not None:  # at start, wait for it: the server is not answered before it
                await asyncio.shield(self._replay)
        except BaseException:
            self.files.close()
            raise
        self._watch = asyncio.get_running_loop().create_task(self._watch_server(),
                                                             name=f"{self.name}-journal")

    async def close(self) -> None:
        for task in (self._watch, self._replay, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        pending, self._pending = self._pending, []
        for _, _, done in pending:  # never written: their writes are answered 503
            if not done.done():
                done.set_exception(StoreUnavailable(f"{self.name} journal closed"))
        async with self._lock:
            self.files.close()

    # --- writing --------------------------------------------------------------------------------------

    async def append(self, entries: Sequence[T], journal_ms: int | None = None) -> None:
        """Journal ``entries`` (fsync'd when this returns; ``StoreUnavailable`` if they could not be)."""
        if not entries:
            return
        at = time.time_ns() // 1_000_000 if journal_ms is None else journal_ms
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((at, entries, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name=f"{self.name}-fsync")
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._lock:
                    await asyncio.to_thread(self.files.append_groups, [(t, e) for t, e, _ in batch])
            except OSError as exc:
                error = StoreUnavailable(f"{self.name} journal {self.files.dir}: {exc}")
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(StoreUnavailable(f"{self.name} journal closed: {exc!r}"))
                raise
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around a write to the server and its ``append``: waits for a replay under way (at most the
        store timeout: then ``StoreUnavailable``), and a replay waits for the writes under way."""
        deadline = time.monotonic() + self._timeout_s
        while self._gate is not None:
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(0.0, left)):
                    await asyncio.shield(self._gate)
            except TimeoutError:
                raise StoreUnavailable(f"{self.name} store: replaying the journal into a restarted "
                                       "server") from None
        self._writers += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._writers -= 1
            if self._writers == 0:
                self._idle.set()

    # --- watching the server ----------------------------------------------------------------------

    async def _watch_server(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check_mark()
            except StoreUnavailable:
                pass  # the store's guard sees the outage on the next write or probe
            except Exception:
                log.exception("%s journal: checking the server failed", self.name)

    async def check_mark(self) -> None:
        async with self._checking:
            await self._check_mark_once()

    async def _check_mark_once(self) -> None:
        mark = await self._server_mark()
        action = decide(self._mark, mark)
        if action == "replay" and self._replay is None:
            self._gate = asyncio.get_running_loop().create_future()
            try:
                await self._idle.wait()  # the writes under way are journaled: they are replayed too
                async with self._lock:
                    entries, segments = await asyncio.to_thread(self.files.entries)
            except BaseException:
                self._open_gate()
                raise
            if entries:
                log.warning("%s store restarted (%s); replaying %d journaled entries", self.name,
                            mark.run_id or "no run_id", len(entries))
                self._replay = asyncio.get_running_loop().create_task(
                    self._run_replay(entries, segments, mark), name=f"{self.name}-journal-replay")
                return
            self._open_gate()
        if action != "none" and self._replay is None:
            await self._trim(mark)
            self._mark = mark.as_dict()
            await asyncio.to_thread(self.files.write_mark, mark)

    def _open_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None and not gate.done():
            gate.set_result(None)

    async def _trim(self, mark: ServerMark) -> None:
        point = snapshot_point_ms(mark, self._timeout_ms)
        async with self._lock:
            await asyncio.to_thread(self.files.rotate)
            self.trimmed += await asyncio.to_thread(self.files.trim, point)

    async def _run_replay(self, entries: list[T], segments: list[Path], mark: ServerMark) -> None:
        try:
            while True:
                try:
                    for start in range(0, len(entries), self._chunk):
                        async with asyncio.timeout(self._timeout_s):
                            await self._replay_chunk(entries[start:start + self._chunk])
                    break
                except (StoreUnavailable, TimeoutError) as exc:
                    log.warning("%s journal replay failed (%s); retrying", self.name, exc)
                    await asyncio.sleep(self._interval)
            self.replayed += len(entries)
            log.warning("%s journal: %d entries replayed", self.name, len(entries))
            # Kept until a snapshot taken after the replay holds them.
            async with self._lock:
                await asyncio.to_thread(self.files.restamp, entries, time.time_ns() // 1_000_000, segments)
            self._mark = mark.as_dict()
            await asyncio.to_thread(self.files.write_mark, mark)
        finally:
            self._replay = None
            self._open_gate()
