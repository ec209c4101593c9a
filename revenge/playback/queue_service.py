"""The play-queue service: a change is based on a version, applied by the pure rules of ``queue`` and
written by a compare-and-set on the store; ``on_change`` callbacks see every written queue (the events
of issue 16 will publish them).

A change based on another version than the stored one is refused with ``QueueConflict`` carrying the
queue as stored: no device overwrites another's change it has not seen. One that was based on the
current version but lost the race to the store (another change written in between) is refused the same
way: the rules ran on a queue that is no longer current.

A write that times out (503) may still have reached the store and be applied by it later; it was never
acknowledged, and the client's retry, based on the same version, is then a 409 showing it applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from revenge.playback import queue as rules
from revenge.playback.queue import Op, Queue
from revenge.playback.queue_store import QueueStore

log = logging.getLogger("revenge.playback")

OnChange = Callable[[str, Queue], object]  # (user id, the queue as written)


class QueueConflict(Exception):
    """The change was based on ``base_version`` but the stored queue is ``current``."""

    def __init__(self, base_version: int, current: Queue) -> None:
        super().__init__(f"the change is based on version {base_version}, the queue is at {current.version}")
        self.base_version = base_version
        self.current = current


class QueueService:
    def __init__(self, store: QueueStore) -> None:
        self._store = store
        self._on_change: list[OnChange] = []

    def on_change(self, callback: OnChange) -> None:
        """Call ``callback(user_id, queue)`` after every acknowledged change. A failing callback is
        logged and does not fail the change (it is written already)."""
        self._on_change.append(callback)

    async def get(self, user_id: str) -> Queue:
        return await self._store.get(user_id)

    async def change(self, user_id: str, base_version: int, ops: Sequence[Op], device_id: str,
                     now_ms: int) -> Queue:
        """The queue after ``ops`` (one change, all or nothing), written; ``QueueConflict`` when the
        stored version is not ``base_version``; ``QueueError`` from the rules (nothing written)."""
        current = await self._store.get(user_id)
        if current.version != base_version:
            raise QueueConflict(base_version, current)
        changed = rules.change(current, ops, device_id, now_ms)
        stored = await self._store.put(user_id, changed, base_version)
        if stored is not None:
            raise QueueConflict(base_version, stored)
        for callback in self._on_change:
            try:
                callback(user_id, changed)
            except Exception:
                log.exception("a queue change callback failed")
        return changed
