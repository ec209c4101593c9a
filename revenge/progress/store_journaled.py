"""``JournaledStore``: the Dragonfly/Redis progress store with the local journal (``revenge.journal``).

``apply_batch`` sends the batch to the server and writes it to the journal (fsync) at the same time, and
returns once both are done: the fsync costs no extra wait unless it is slower than the round trip. An
update whose batch failed may be in the journal although it was not acknowledged; replaying it later is
what the client's retry would have done anyway. The user's actions (mark played/unplayed, hide/show,
reset) are journaled the same way, in order with the updates, each with an id the state remembers
(``replay.Seen``): a replayed mark_played is counted once, a replayed reset deletes once and keeps out
what came before it.

The watching of the server (trim behind a snapshot, replay after a restart) is
``revenge.journal_watch.Journal``. While a replay runs, ``check`` says the store is unavailable, so the
probe that ends an outage ends it only once the journal is back in the server; updates that arrive
meanwhile on a server that restarted between two checks are applied as usual (a replay of older updates
after them changes nothing: the rules order by event time, and a replayed mark older than the state's
event leaves the position to it, ``replay.replay_op``). Actions wait for a replay under way
(``Journal.writing``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from revenge.errors import StoreUnavailable
from revenge.journal_watch import CHECK_INTERVAL_S, Journal, ServerWatch
from revenge.library.model import ItemType
from revenge.progress.durability import DURABLE_LEVEL, Durability
from revenge.progress.journal import ProgressEntry, progress_journal_files
from revenge.progress.model import (
    PlayedItem,
    PlayedOrder,
    ProgressOp,
    ProgressOpKind,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.store_dragonfly import DragonflyStore


class JournaledStore:
    """``ProgressStore``: a ``DragonflyStore`` whose acknowledged updates are also journaled locally."""

    def __init__(self, inner: DragonflyStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, watch: ServerWatch | None = None) -> None:
        self.inner = inner
        # The process's one watch of the server (create_app's), or a watch of its own.
        self.journal: Journal[ProgressEntry] = Journal(
            progress_journal_files(data_dir), "progress",
            watch or ServerWatch(inner.server_mark, check_interval), self._replay, timeout_seconds)

    @property
    def durability(self) -> Durability | None:
        return self.inner.durability

    async def open(self) -> None:
        await self.inner.open()
        try:
            await self.journal.open()
        except BaseException:
            await self.inner.close()
            raise

    async def close(self) -> None:
        await self.journal.close()
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def check(self) -> Durability:
        durability = await self.inner.check()
        await self.journal.check_mark()
        if self.journal.replaying:
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
        append = asyncio.ensure_future(self.journal.append(updates, time.time_ns() // 1_000_000))
        try:
            states = await self.inner.apply_batch(updates)
        finally:
            await append  # never answer before the fsync, nor leave the write behind on an error
        return states

    async def _replay(self, entries: Sequence[ProgressEntry]) -> None:
        await self.inner.replay(entries)

    async def _act(self, kind: ProgressOpKind, user_id: str, item_id: str, item_type: ItemType,
                   duration_ms: int, now_ms: int) -> ProgressState | bool:
        """An action, journaled in order with the updates (unless the server fsyncs itself)."""
        if self.server_fsyncs:
            return await self.inner.apply_op(ProgressOp(kind, user_id, item_id, item_type, duration_ms,
                                                        now_ms, ""))
        op = ProgressOp(kind, user_id, item_id, item_type, duration_ms, now_ms,
                        f"{now_ms}-{secrets.token_hex(4)}")
        async with self.journal.writing():
            append = asyncio.ensure_future(self.journal.append([op], time.time_ns() // 1_000_000))
            try:
                return await self.inner.apply_op(op)
            finally:
                await append

    async def _modify(self, kind: ProgressOpKind, user_id: str, item_id: str, item_type: ItemType,
                      duration_ms: int, now_ms: int) -> ProgressState:
        state = await self._act(kind, user_id, item_id, item_type, duration_ms, now_ms)
        if not isinstance(state, ProgressState):
            raise RuntimeError(f"progress {kind} gave no state")
        return state

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
        return await self._modify("played", user_id, item_id, item_type, duration_ms, now_ms)

    async def mark_unplayed(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                            now_ms: int) -> ProgressState:
        return await self._modify("unplayed", user_id, item_id, item_type, duration_ms, now_ms)

    async def set_hidden(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                         hidden: bool, now_ms: int) -> ProgressState:
        return await self._modify("hidden" if hidden else "shown", user_id, item_id, item_type, duration_ms,
                                  now_ms)

    async def reset(self, user_id: str, item_id: str) -> bool:
        # The reset's time is this instance's clock, as the updates' receive times are.
        return bool(await self._act("reset", user_id, item_id, "track", 0, time.time_ns() // 1_000_000))
