"""The contract of the listening-records store (scrobbles with their outbox, listening stats, bookmarks),
implemented by the embedded SQLite store and the Dragonfly/Redis store, and the factory.

Semantics shared by both (tests/integration/test_records_contract.py checks them on each):

* Scrobbles are unique per (user, item, started_at); ``add_scrobbles`` applies ``scrobbles.add_to``
  atomically per record and answers, per input, the record as stored and whether it was new.
* Outbox, one per service (``scrobbles.SERVICES``): a new record goes into the outboxes
  ``scrobbles.queued_services`` names for its type. ``outbox(user, service, limit)`` lists that
  service's queue of the user, oldest listen first (ties: item id); ``mark(user, service, marks,
  now_ms)`` takes the records of those marks that are still queued for the service out of it, giving
  each the ``Delivery`` of its mark, and answers how many it took; ``outbox_size`` counts the queue.
  A repeat of a listen never puts it back. Forwarding is per user (each user links their own
  accounts), which also keeps every key of the Redis store under the user's hash tag.
* ``listening_totals(user, first_day, last_day)`` equals ``scrobbles.day_totals`` over the user's
  records (UTC start day, inclusive range).
* Bookmarks are per (user, item); ``add_bookmark`` refuses (``False``) past ``max_per_item``; listing
  is in ``bookmarks.ordered`` order; deleting needs the right user, item and id.
* Any failure to reach or write the backing store raises ``StoreUnavailable`` (503 + Retry-After), as
  for the progress store; nothing of a failed call is acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from revenge.playback.bookmarks import Bookmark
from revenge.playback.scrobbles import AddResult, DayTotal, Mark, Scrobble, ServiceName

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.journal_watch import ServerWatch


class RecordStore(Protocol):
    async def open(self) -> None:
        """Connect / create the schema. Raises ``StoreUnavailable`` when the backend is unreachable."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    async def add_scrobbles(self, scrobbles: Sequence[Scrobble]) -> list[AddResult]:
        """Record listens (in one round trip / transaction); one result per input, in order. Inputs
        repeating an earlier one of the same call behave as repeats of it."""

    async def get_scrobble(self, user_id: str, scrobble_id: str) -> Scrobble | None:
        """One record by its id (``scrobbles.scrobble_id``), or ``None``."""

    async def outbox(self, user_id: str, service: ServiceName, limit: int) -> list[Scrobble]:
        """The user's queue for ``service``, oldest ``started_at`` first, at most ``limit``
        (1..OUTBOX_MAX_LIMIT)."""

    async def mark(self, user_id: str, service: ServiceName, marks: Sequence[Mark], now_ms: int) -> int:
        """Take records out of the service's queue (sent or skipped); unknown, malformed or no longer
        queued ids are passed over. The count taken out."""

    async def outbox_size(self, user_id: str, service: ServiceName) -> int:
        """How many of the user's records are queued for ``service``."""

    async def listening_totals(self, user_id: str, first_day: int, last_day: int) -> list[DayTotal]:
        """Per UTC start day and item type within the inclusive range, ordered by day then type."""

    async def add_bookmark(self, bookmark: Bookmark, max_per_item: int) -> bool:
        """Store a new bookmark; ``False`` (nothing stored) when its (user, item) already has
        ``max_per_item`` bookmarks."""

    async def bookmarks(self, user_id: str, item_id: str) -> list[Bookmark]:
        """The user's bookmarks in the item, in ``bookmarks.ordered`` order."""

    async def delete_bookmark(self, user_id: str, item_id: str, bookmark_id: str) -> bool:
        """``True`` when the user had that bookmark in that item (and it is gone now)."""


def open_record_store(settings: Settings, watch: ServerWatch | None = None) -> RecordStore:
    """The store ``settings.store`` names (not yet opened), next to the progress store: ``"sqlite"`` →
    ``records.db`` in the data dir; a ``redis://`` / ``rediss://`` / ``unix://`` URL → the same
    Dragonfly/Redis server. Call ``await store.open()`` next."""
    if settings.store == "sqlite":
        from revenge.playback.records_sqlite import SqliteRecordStore

        return SqliteRecordStore(settings.data_dir / "records.db")
    from revenge.playback.records_redis import RedisRecordStore

    store = RedisRecordStore(settings.store, settings.store_timeout_seconds)
    if not settings.progress_journal:
        return store
    from revenge.playback.journaled import JournaledRecordStore

    return JournaledRecordStore(store, settings.data_dir, settings.store_timeout_seconds, watch=watch)
