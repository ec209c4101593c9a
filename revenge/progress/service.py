"""``ProgressService``: the store plus its batcher, as the routes (and playback sessions) use them.

Created and closed by ``create_app``'s lifespan; held in ``AppState.progress``. Updates go through the
group-commit batcher; reads and the rare user actions (played, hidden, reset) go to the store directly.
Both go through the store's guard (``revenge.progress.guard``): bounded by ``store_timeout_seconds``,
and refused at once while the store is known down.

Startup refuses a store on which acknowledged writes would not survive a restart, unless
``store_durability = "accept_loss"`` (``revenge.progress.durability``).

Plays: when an applied update made a track listen count as a play, the optional ``PlayRecorder`` (the
scrobble hook, ``revenge.playback.progress_scrobbles``) records it before the update is answered. If
that fails, the update is answered ``StoreUnavailable`` although its progress was applied, so that the
client retries: a retry with the same ``client_ts`` changes nothing in the progress rules and is seen
again as the update that counted the play (same event time), so the play is recorded then, once
(scrobbles are deduplicated per listen). (A retry without ``client_ts`` gets a new event time and is not
seen as the counting update: that play stays counted in the progress state but has no scrobble.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from revenge.errors import StoreUnavailable
from revenge.library.model import ItemType
from revenge.progress import rules
from revenge.progress.batcher import BatcherOverloaded, ProgressBatcher
from revenge.progress.durability import StoreNotDurable
from revenge.progress.guard import StoreGuard
from revenge.progress.model import (
    DEFAULT_POLICIES,
    CompletionPolicy,
    PlayedItem,
    PlayedOrder,
    Policies,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.store import ProgressStore, open_store

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.journal_watch import ServerWatch
    from revenge.metrics import Metrics


log = logging.getLogger("revenge.progress")
T = TypeVar("T")


def store_label(settings: Settings) -> str:
    """``sqlite`` or ``redis``: the store's name in metrics and /healthz (never the URL: it may hold a
    password)."""
    return "sqlite" if settings.store == "sqlite" else "redis"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PlayRecorder(Protocol):
    """Told about applied updates that counted a play, to record them (scrobbles)."""

    def counted_play(self, update: ProgressUpdate, state: ProgressState) -> bool:
        """Whether ``update``, applied, gave ``state`` a newly counted play (pure, cheap)."""

    async def record_plays(self, plays: Sequence[tuple[ProgressUpdate, ProgressState]]) -> None:
        """Record them durably, or raise ``StoreUnavailable``."""


class ProgressService:
    def __init__(self, store: ProgressStore, batcher: ProgressBatcher, policies: Policies,
                 plays: PlayRecorder | None = None, guard: StoreGuard | None = None) -> None:
        self.store = store
        self.batcher = batcher
        self.policies = policies
        self.plays = plays
        self.guard = guard
        self._on_applied: list[Callable[[ProgressUpdate, ProgressState], object]] = []

    def on_applied(self, callback: Callable[[ProgressUpdate, ProgressState], object]) -> None:
        """Call ``callback(update, state)`` after every acknowledged update (the events to the user's
        other devices). It must not block; a failing callback is logged and fails nothing."""
        self._on_applied.append(callback)

    def _applied(self, update: ProgressUpdate, state: ProgressState) -> None:
        for callback in self._on_applied:
            try:
                callback(update, state)
            except Exception:
                log.exception("a progress callback failed")

    @classmethod
    async def open(cls, settings: Settings, policies: Policies = DEFAULT_POLICIES,
                   metrics: Metrics | None = None, plays: PlayRecorder | None = None,
                   watch: ServerWatch | None = None) -> ProgressService:
        """Open the store ``settings.store`` names (its journal on ``watch``, the process's watch of the
        server) and start the batcher on the running loop."""
        store = open_store(settings, policies, watch)
        try:
            await store.open()
        except StoreNotDurable as exc:
            log.error("%s", exc)  # the reason the server does not start, naming the setting
            raise
        on_flush = None
        if metrics is not None:
            label = store_label(settings)
            on_flush = functools.partial(metrics.progress_flush, label)
        guard = StoreGuard(store.check, settings.store_timeout_seconds)
        batcher = ProgressBatcher(store, settings.progress_batch_max, settings.progress_batch_window_ms,
                                  settings.progress_queue_max, on_flush, guard=guard)
        batcher.start()
        return cls(store, batcher, policies, plays, guard)

    async def close(self) -> None:
        try:
            await self.batcher.close()
        finally:
            if self.guard is not None:
                await self.guard.close()
            await self.store.close()

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await (operation() if self.guard is None else self.guard.call(operation))

    def policy(self, item_type: ItemType) -> CompletionPolicy:
        return self.policies[item_type]

    def resume_position_ms(self, state: ProgressState | None, item_type: ItemType) -> int:
        return rules.resume_position_ms(state, self.policies[item_type])

    async def update(self, update: ProgressUpdate) -> ProgressState:
        """Apply one update (group commit); raises ``StoreUnavailable`` or ``BatcherOverloaded``."""
        state = await self.batcher.submit(update)
        if self.plays is not None and self.plays.counted_play(update, state):
            await self.plays.record_plays([(update, state)])
        self._applied(update, state)
        return state

    async def update_many(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState | BaseException]:
        """Apply updates back to back, in order; one state or exception each (an outage may fail only
        the part of them that fell into a failed batch). Raises ``BatcherOverloaded`` when the queue
        cannot take them — then none was accepted. (A replay larger than the queue bound goes in
        queue-sized parts; a later part that finds the queue full gets ``BatcherOverloaded`` each.)"""
        results: list[ProgressState | BaseException] = []
        # A replay larger than the whole queue bound goes in queue-sized parts, one after the other.
        step = self.batcher.queue_max
        for start in range(0, len(updates), step):
            part = updates[start:start + step]
            try:
                futures = self.batcher.enqueue(part)
            except BatcherOverloaded as exc:
                if start == 0:
                    raise
                results.extend(BatcherOverloaded(str(exc)) for _ in part)
                continue
            except StoreUnavailable as exc:  # the store is known down: each update answers it
                results.extend(StoreUnavailable(str(exc)) for _ in part)
                continue
            results.extend(await asyncio.gather(*futures, return_exceptions=True))
        if self.plays is not None:
            await self._record_plays(updates, results)
        if self._on_applied:
            # One event per item, its last: an offline replay of 1 000 updates is news of a few items.
            last: dict[str, tuple[ProgressUpdate, ProgressState]] = {}
            for update, result in zip(updates, results, strict=True):
                if isinstance(result, ProgressState):
                    last.pop(update.item_id, None)
                    last[update.item_id] = (update, result)
            for update, state in last.values():
                self._applied(update, state)
        return results

    async def _record_plays(self, updates: Sequence[ProgressUpdate],
                            results: list[ProgressState | BaseException]) -> None:
        """Record the plays ``updates`` counted; if that fails, those updates (only) answer the error."""
        assert self.plays is not None
        counted = [(i, u, r) for i, (u, r) in enumerate(zip(updates, results, strict=True))
                   if isinstance(r, ProgressState) and self.plays.counted_play(u, r)]
        if not counted:
            return
        try:
            await self.plays.record_plays([(u, r) for _, u, r in counted])
        except StoreUnavailable as exc:
            for i, _, _ in counted:
                results[i] = StoreUnavailable(str(exc))

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        return await self._call(lambda: self.store.get(user_id, item_id))

    async def continue_listening(self, user_id: str, item_type: ItemType | None,
                                 limit: int) -> list[ProgressState]:
        return await self._call(lambda: self.store.continue_listening(user_id, item_type, limit, now_ms()))

    async def played(self, user_id: str, item_type: ItemType, order: PlayedOrder,
                     limit: int) -> list[PlayedItem]:
        return await self._call(lambda: self.store.played(user_id, item_type, order, limit))

    async def mark_played(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                          played: bool) -> ProgressState:
        mark = self.store.mark_played if played else self.store.mark_unplayed
        return await self._call(lambda: mark(user_id, item_id, item_type, duration_ms, now_ms()))

    async def set_hidden(self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int,
                         hidden: bool) -> ProgressState:
        return await self._call(
            lambda: self.store.set_hidden(user_id, item_id, item_type, duration_ms, hidden, now_ms()))

    async def reset(self, user_id: str, item_id: str) -> bool:
        return await self._call(lambda: self.store.reset(user_id, item_id))

    async def ping(self) -> None:
        """For /healthz: down while the circuit is open (writes are refused then, even if the server
        answers a ping, e.g. after a reconnect to a server that is not durable enough)."""
        if self.guard is not None:
            self.guard.check()
        await self.store.ping()
