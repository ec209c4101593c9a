"""``Journal``: a store's journal files (``revenge.journal``) with the watching of its server;
``ServerWatch``: the one look at the server's mark per interval that every journal of a process shares.

``append`` groups the batches that arrive while an fsync runs into the next one (group commit). The
watch reads the server's mark every ``CHECK_INTERVAL_S`` (and so does every probe of an outage,
``Journal.check_mark``), once for all the journals it serves (one round trip per interval per instance,
however many stores are journaled), and hands it to each: a completed snapshot trims the journal, a
restart from a snapshot starts the replay (``replay_chunk``, the store's own re-apply, in journal order,
``chunk`` entries at a time, retried until the server takes them). While a replay runs, ``replaying`` is
true: the store's probe says it is unavailable, and the writes that go through ``writing()`` wait for it,
so an older entry replayed never overwrites a newer write; ``writing()`` also holds the replay back until
the writes under way are journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from redis.exceptions import RedisError

from revenge.errors import StoreUnavailable
from revenge.journal import JournalFiles, ServerMark, decide, read_server_mark, snapshot_point_ms
from revenge.redis_scripts import ScriptedRedis

log = logging.getLogger("revenge.journal")

CHECK_INTERVAL_S = 1.0
REPLAY_CHUNK = 512

T = TypeVar("T")


class Journal(Generic[T]):
    """``on_mark`` sees every mark handed to this journal, before the journal acts on it."""

    def __init__(self, files: JournalFiles[T], name: str, watch: ServerWatch,
                 replay_chunk: Callable[[Sequence[T]], Awaitable[object]], timeout_seconds: float,
                 chunk: int = REPLAY_CHUNK, on_mark: Callable[[ServerMark], None] | None = None) -> None:
        self.files = files
        self._chunk = chunk  # entries per replay_chunk call, which must end within the store timeout
        self.name = name
        self.watch = watch
        self._on_mark = on_mark
        self._replay_chunk = replay_chunk
        self._timeout_s = timeout_seconds
        self._timeout_ms = round(timeout_seconds * 1000)
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
        self._watched = False
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
            await self.watch.look(self)
            if self._replay is not None:  # at start, wait for it: the server is not answered before it
                await asyncio.shield(self._replay)
        except BaseException:
            self.files.close()
            raise
        self.watch.add(self)
        self._watched = True

    async def close(self) -> None:
        if self._watched:
            self._watched = False
            await self.watch.remove(self)
        for task in (self._replay, self._flusher):
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

    async def check_mark(self) -> None:
        """Look at the server now (a probe): the mark read goes to every journal of the watch."""
        await self.watch.check()

    async def observe(self, mark: ServerMark) -> None:
        """Act on the server's mark (``ServerWatch`` calls this, one look at a time)."""
        if self._on_mark is not None:
            self._on_mark(mark)
        async with self._checking:
            await self._check_mark_once(mark)

    async def _check_mark_once(self, mark: ServerMark) -> None:
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
                    await asyncio.sleep(self.watch.interval)
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


class ServerWatch:
    """Reads the server's mark (``read``) once per ``interval`` while at least one journal is open, and
    hands it to every open journal, one look at a time (so no journal sees an older mark after a newer
    one). One per process and server: made by ``create_app`` (``redis_server_watch``); a store made
    without one makes its own. ``sleep`` is the pause between looks (tests step it by hand)."""

    def __init__(self, read: Callable[[], Awaitable[ServerMark]], interval: float = CHECK_INTERVAL_S, *,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 on_close: Callable[[], Awaitable[object]] | None = None) -> None:
        self.interval = interval
        self._read = read
        self._sleep = sleep
        self._on_close = on_close
        self._journals: list[Journal[Any]] = []
        self._looking = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.looks = 0  # looks the task took, the server down or not (tests wait on it)

    @property
    def journals(self) -> int:
        return len(self._journals)

    async def look(self, journal: Journal[Any]) -> None:
        """Read the mark and hand it to ``journal`` alone (its open)."""
        async with self._looking:
            await journal.observe(await self._read())

    async def check(self) -> None:
        """Read the mark and hand it to every journal (``StoreUnavailable`` when the server is down)."""
        async with self._looking:
            mark = await self._read()
            for journal in list(self._journals):
                try:
                    await journal.observe(mark)
                except StoreUnavailable:
                    raise
                except Exception:  # one journal's failure (its files) must not starve the others
                    log.exception("%s journal: acting on the server's mark failed", journal.name)

    def add(self, journal: Journal[Any]) -> None:
        self._journals.append(journal)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="journal-server-watch")

    async def remove(self, journal: Journal[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._journals.remove(journal)
        if not self._journals:
            await self._stop()

    async def close(self) -> None:
        self._journals.clear()
        await self._stop()
        if self._on_close is not None:
            await self._on_close()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        # Stopped by ``_stop`` taking the task away, not only by its cancel: a client library that
        # swallows a cancel landing in a read must not keep a closed watch alive.
        while self._task is asyncio.current_task():
            await self._sleep(self.interval)
            try:
                await self.check()
            except StoreUnavailable:
                pass  # the stores' guards see the outage on the next write or probe
            except Exception:
                log.exception("journals: checking the server failed")
            self.looks += 1


def redis_server_watch(url: str, timeout_seconds: float, interval: float = CHECK_INTERVAL_S, *,
                       sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> ServerWatch:
    """The watch of the server at ``url``, on a connection of its own (made at its first look)."""
    connection = ScriptedRedis(url, timeout_seconds, "journal", (), log)
    opened = False

    async def read() -> ServerMark:
        nonlocal opened
        if not opened:
            await connection.open()  # no scripts: no round trip
            opened = True
        try:
            return await read_server_mark(connection.client())
        except RedisError as exc:
            raise connection.unavailable(exc) from exc

    return ServerWatch(read, interval, sleep=sleep, on_close=connection.close)
