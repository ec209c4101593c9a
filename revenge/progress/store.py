"""The contract every progress store implements (embedded SQLite, Dragonfly/Redis), and the factory.

Semantics shared by all stores (tests/integration/test_progress_contract.py checks them on each):

* The rules are those of ``revenge.progress.rules`` (pure Python); a store applies them atomically per
  (user, item) — in Python inside a transaction (SQLite) or in a Lua script mirroring them (Dragonfly).
* Policies (``revenge.progress.model.CompletionPolicy`` per item type) are given to the store when it is
  constructed (keyword ``policies``, default ``DEFAULT_POLICIES``).
* Any failure to reach or write the backing store raises ``StoreUnavailable``: the caller answers 503 +
  Retry-After and nothing is acknowledged. Other exceptions are bugs.
* ``now_ms`` arguments are the server clock (ms since epoch), passed in so the stores stay testable.
* States read (``get``) carry their per-device rows in ``devices``; write answers (``apply_batch``) and
  ``continue_listening`` may leave them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from revenge.library.model import ItemType
from revenge.progress.model import PlayedItem, PlayedOrder, ProgressState, ProgressUpdate

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.journal_watch import ServerWatch
    from revenge.progress.durability import Durability
    from revenge.progress.model import Policies

CONTINUE_DEFAULT_LIMIT = 20
CONTINUE_MAX_LIMIT = 100
PLAYED_MAX_LIMIT = 5000
SQLITE_BUSY_SHARE = 0.75  # of store_timeout_seconds: how long SQLite waits for a held write lock


class ProgressStore(Protocol):
    async def open(self) -> None:
        """Connect / create the schema. Raises ``StoreUnavailable`` when the backend is unreachable."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent; afterwards every operation raises
        ``StoreUnavailable``."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise (used by /healthz)."""

    @property
    def durability(self) -> Durability | None:
        """How durable acknowledged writes are, as last read from the backend (``None``: not yet)."""

    async def check(self) -> Durability:
        """Return the durability once the store answers and (re-read from the backend) satisfies
        ``store_durability``; raise ``StoreUnavailable`` otherwise (``StoreNotDurable`` when it answers
        but is not durable enough). The probe that ends an outage."""

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        """Apply ``updates`` with ``rules.apply_update`` in ONE round trip (one transaction / one pipeline).

        Updates to the same (user, item) are applied in the order given; the result has one entry per
        update, in order: the state right after that update was applied, WITHOUT device rows (a write's
        answer does not need them; ``get`` gives them). Either every update is durably applied when this
        returns, or ``StoreUnavailable`` is raised. (A Redis pipeline is not a transaction: on an error in
        the middle some updates may have been applied; they are applied idempotently with respect to the
        rules — re-sending them is harmless because an update never moves the global state back and
        device rows keep the newest event.)
        """

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        """The state with its devices, or ``None`` when the user has none for the item."""

    async def continue_listening(
        self, user_id: str, item_type: ItemType | None, limit: int, now_ms: int
    ) -> list[ProgressState]:
        """States for which ``rules.is_continue_candidate(state, now_ms)`` holds, newest
        ``last_played_at`` first (ties: item id ascending), at most ``limit`` (1..CONTINUE_MAX_LIMIT),
        only of ``item_type`` when given. Devices may be left empty here."""

    async def played(self, user_id: str, item_type: ItemType, order: PlayedOrder,
                     limit: int) -> list[PlayedItem]:
        """The user's items of ``item_type`` with the greatest ``last_played_at`` (``recent``: every item
        with one) or ``play_count`` (``frequent``: items played at least once), at most ``limit``
        (1..PLAYED_MAX_LIMIT), in that order (ties: the other one descending, then item id). Which of
        the items tied at the limit are in is unspecified. Served from an index, whatever the number
        of the user's items (the albums sorts recently_played and frequent)."""

    async def mark_played(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int
    ) -> ProgressState:
        """``rules.mark_played`` on the current state (created when missing); returns the new state."""

    async def mark_unplayed(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int
    ) -> ProgressState:
        """``rules.mark_unplayed`` on the current state (created when missing); returns the new state."""

    async def set_hidden(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, hidden: bool, now_ms: int
    ) -> ProgressState:
        """``rules.set_hidden`` on the current state (created when missing); returns the new state."""

    async def reset(self, user_id: str, item_id: str) -> bool:
        """Delete the state and its device rows; ``True`` when there was one."""


def open_store(settings: Settings, policies: Policies | None = None,
               watch: ServerWatch | None = None) -> ProgressStore:
    """The store ``settings.store`` names (not yet opened): ``"sqlite"`` → ``progress.db`` in the data
    dir; ``redis://``, ``rediss://``, ``unix://`` → Dragonfly/Redis. Call ``await store.open()`` next."""
    from revenge.progress.model import DEFAULT_POLICIES

    chosen = DEFAULT_POLICIES if policies is None else policies
    if settings.store == "sqlite":
        from revenge.progress.store_sqlite import SqliteStore

        # SQLite gives up on a held write lock before the service's timeout gives up on SQLite, so a
        # write answered 503 is one SQLite rolled back, not one still waiting to commit.
        busy_ms = round(settings.store_timeout_seconds * 1000 * SQLITE_BUSY_SHARE)
        return SqliteStore(settings.data_dir / "progress.db", policies=chosen, busy_timeout_ms=busy_ms)
    from revenge.progress.store_dragonfly import DragonflyStore

    store = DragonflyStore(settings.store, settings, policies=chosen, journaled=settings.progress_journal)
    if not settings.progress_journal:
        return store
    from revenge.progress.store_journaled import JournaledStore

    return JournaledStore(store, settings.data_dir, settings.store_timeout_seconds, watch=watch)
