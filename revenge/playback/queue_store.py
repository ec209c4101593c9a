"""The contract of the play-queue store, implemented by the embedded SQLite store and the Dragonfly/Redis
store, and the factory. tests/integration/test_queue_contract.py checks it on each.

* One queue per user (``queue.Queue``); a user without one has ``queue.EMPTY`` (version 0).
* ``put(user, queue, base_version)`` is a compare-and-set: it writes ``queue`` only if the stored version
  is still ``base_version`` (one transaction / one Lua script), so of two writers based on the same
  version exactly one wins; the other is answered the queue as stored now. Versions only grow, so the
  changes of a user are totally ordered.
* Durable when acknowledged: SQLite with ``synchronous=FULL``; Redis relies on the server's fsynced
  append-only file, which the progress store checks when it opens on the same server.
* Any failure to reach or write the store raises ``StoreUnavailable`` (503); nothing of a failed call
  is acknowledged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from revenge.playback.queue import Queue

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.journal_watch import ServerWatch


class QueueStore(Protocol):
    async def open(self) -> None:
        """Connect / create the schema. Raises ``StoreUnavailable`` when the backend is unreachable."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    async def get(self, user_id: str) -> Queue:
        """The user's queue (``queue.EMPTY`` when there is none)."""

    async def put(self, user_id: str, queue: Queue, base_version: int) -> Queue | None:
        """Write ``queue`` if the stored version is ``base_version``: ``None``; otherwise nothing is
        written and the answer is the stored queue."""


def open_queue_store(settings: Settings, watch: ServerWatch | None = None) -> QueueStore:
    """The store ``settings.store`` names (not yet opened): ``"sqlite"`` → ``queue.db`` in the data dir;
    a Redis URL → that server. Call ``await store.open()`` next."""
    if settings.store == "sqlite":
        from revenge.playback.queue_sqlite import SqliteQueueStore

        return SqliteQueueStore(settings.data_dir / "queue.db")
    from revenge.playback.queue_redis import RedisQueueStore

    store = RedisQueueStore(settings.store, settings.store_timeout_seconds)
    if not settings.progress_journal:
        return store
    from revenge.playback.journaled import JournaledQueueStore

    return JournaledQueueStore(store, settings.data_dir, settings.store_timeout_seconds, watch=watch)
