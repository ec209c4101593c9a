"""``JournaledStore``: the Dragonfly/Redis progress store with the local journal (``progress.journal``).

``apply_batch`` sends the batch to the server and writes it to the journal (fsync) at the same time, and
returns once both are done: the fsync costs no extra wait unless it is slower than the round trip. An
update whose batch failed may be in the journal although it was not acknowledged; replaying it later is
what the client's retry would have done anyway.

A task checks the server's mark every ``CHECK_INTERVAL_S`` (and so does every probe of an outage): a
completed snapshot trims the journal, a restart from a snapshot starts the replay. While a replay runs,
``check`` says the store is unavailable, so the probe that ends an outage ends it only once the journal is
back in the server; updates that arrive meanwhile on a server that restarted between two checks are
applied as usual (a replay of older updates after them changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from revenge.errors import StoreUnavailable
from revenge.library.model import ItemType
from revenge.progress.durability import DURABLE_LEVEL, Durability
from revenge.progress.journal import JournalFiles, ServerMark, decide, snapshot_point_ms
from revenge.progress.model import PlayedItem, PlayedOrder, ProgressState, ProgressUpdate
from revenge.progress.store_dragonfly import DragonflyStore

log = logging.getLogger("revenge.progress")

CHECK_INTERVAL_S = 1.0
REPLAY_CHUNK = 512


class JournaledStore:
    """``ProgressStore``: a ``DragonflyStore`` whose acknowledged updates are also journaled locally."""

    def __init__(self, inner: DragonflyStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S) -> None:
        self.inner = inner
        self.files = JournalFiles(data_dir)
        self._timeout_ms = round(timeout_seconds * 1000)
        self._interval = check_interval
        self._lock = asyncio.Lock()  # appends, rotations and trims, one at a time
        self._checking = asyncio.Lock()  # one look at the server's mark at a time
        self._mark: dict[str, object] | None = None
        self._replay: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.replayed = 0  # updates replayed so far (tests, logs)
        self.trimmed = 0

    @property
    def durability(self) -> Durability | None:
        return self.inner.durability

    async def open(self) -> None:
        await asyncio.to_thread(self.files.open)
        self._mark = await asyncio.to_thread(self.files.read_mark)
        try:
            await self.inner.open()
            await self._check_mark()
        except BaseException:
            await self.inner.close()
            self.files.close()
            raise
        if self._replay is not None:  # at start, wait for it: the server is not answered before it
            await asyncio.shield(self._replay)
        self._watch = asyncio.get_running_loop().create_task(self._watch_server(), name="progress-journal")

    async def close(self) -> None:
        for task in (self._watch, self._replay):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.inner.close()
        async with self._lock:
            self.files.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def check(self) -> Durability:
        durability = await self.inner.check()
        await self._check_mark()
        if self._replay is not None:
            raise StoreUnavailable("progress store: replaying the journal into a restarted server")
        return durability

    @property
    def server_fsyncs(self) -> bool:
        """The server itself fsyncs every write before answering (``appendfsync always``): the journal
        would be a second fsync for nothing, so it is skipped until a restart shows otherwise."""
        durability = self.inner.durability
        return durability is not None and durability.level == DURABLE_LEVEL

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        if not updates:
            return []
        if self.server_fsyncs:
            return await self.inner.apply_batch(updates)
        journal_ms = time.time_ns() // 1_000_000
        append = asyncio.ensure_future(self._append(journal_ms, updates))
        try:
            states = await self.inner.apply_batch(updates)
        finally:
            await append  # never answer before the fsync, nor leave the write behind on an error
        return states

    async def _append(self, journal_ms: int, updates: Sequence[ProgressUpdate]) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(self.files.append, journal_ms, updates)
            except OSError as exc:
                raise StoreUnavailable(f"progress journal {self.files.dir}: {exc}") from exc

    # --- watching the server ----------------------------------------------------------------------

    async def _watch_server(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._check_mark()
            except StoreUnavailable:
                pass  # the store's guard sees the outage on the next write or probe
            except Exception:
                log.exception("progress journal: checking the server failed")

    async def _check_mark(self) -> None:
        async with self._checking:
            await self._check_mark_once()

    async def _check_mark_once(self) -> None:
        mark = await self.inner.server_mark()
        action = decide(self._mark, mark)
        if action == "replay" and self._replay is None:
            async with self._lock:
                entries, segments = await asyncio.to_thread(self.files.entries)
            if entries:
                log.warning("progress store restarted (%s); replaying %d journaled updates", mark.run_id
                            or "no run_id", len(entries))
                self._replay = asyncio.get_running_loop().create_task(
                    self._run_replay(entries, segments, mark), name="progress-journal-replay")
                return
        if action != "none" and self._replay is None:
            await self._trim(mark)
            self._set_mark(mark)
            await asyncio.to_thread(self.files.write_mark, mark)

    def _set_mark(self, mark: ServerMark) -> None:
        self._mark = mark.as_dict()

    async def _trim(self, mark: ServerMark) -> None:
        point = snapshot_point_ms(mark, self._timeout_ms)
        async with self._lock:
            await asyncio.to_thread(self.files.rotate)
            self.trimmed += await asyncio.to_thread(self.files.trim, point)

    async def _run_replay(self, entries: list[ProgressUpdate], segments: list[Path],
                          mark: ServerMark) -> None:
        try:
            while True:
                try:
                    for start in range(0, len(entries), REPLAY_CHUNK):
                        async with asyncio.timeout(self._timeout_ms / 1000.0):
                            await self.inner.apply_batch(entries[start:start + REPLAY_CHUNK])
                    break
                except (StoreUnavailable, TimeoutError) as exc:
                    log.warning("progress journal replay failed (%s); retrying", exc)
                    await asyncio.sleep(self._interval)
            self.replayed += len(entries)
            log.warning("progress journal: %d updates replayed", len(entries))
            # Kept until a snapshot taken after the replay holds them.
            async with self._lock:
                await asyncio.to_thread(self.files.restamp, entries, time.time_ns() // 1_000_000, segments)
            self._set_mark(mark)
            await asyncio.to_thread(self.files.write_mark, mark)
        finally:
            self._replay = None

    # --- the rest of the contract goes straight to the server --------------------------------------

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        return await self.inner.get(user_id, item_id)

    async def continue_listening(self, user_id: str, item_type: ItemType | None, limit: int,
                                 now_ms: int) -> list[ProgressState]:
        return await self.inner.continue_listening(user_id, item_type, limit, now_ms)

    async def played(self, user_id: str, item_type: ItemType, order: PlayedOrder,
                     limit: int) -> list[PlayedItem]:
        return await self.inner.played(user_id, item_type, order, limit)

    async def mark_played(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                          now_ms: int) -> ProgressState:
        return await self.inner.mark_played(user_id, item_id, item_type, duration_ms, now_ms)

    async def mark_unplayed(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                            now_ms: int) -> ProgressState:
        return await self.inner.mark_unplayed(user_id, item_id, item_type, duration_ms, now_ms)

    async def set_hidden(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                         hidden: bool, now_ms: int) -> ProgressState:
        return await self.inner.set_hidden(user_id, item_id, item_type, duration_ms, hidden, now_ms)

    async def reset(self, user_id: str, item_id: str) -> bool:
        return await self.inner.reset(user_id, item_id)
