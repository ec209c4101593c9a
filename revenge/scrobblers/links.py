"""Where each user's links (account, sealed secret, state) are kept, next to the other stores:
``scrobblers.db`` (SQLite) in the data dir, or the Dragonfly/Redis server of ``settings.store``.

Semantics shared by both (tests/integration/test_scrobbler_links.py runs them on each):

* One link per (user, service); ``put`` replaces it whole (a new ``linked_at``), ``delete`` removes it.
* ``note`` records what forwarding learnt (a success, an error, a permanent error that stops the link)
  on the link of that ``linked_at`` only: a report about a link the user has since replaced or removed
  changes nothing.
* ``linked()`` lists every (user, service) with a link, for the forwarder to visit.
* A lease per (user, service) (``acquire`` → a token or ``None`` when another holder has it; it
  expires after ``ttl_ms``; ``release`` with the token frees it, a stale token does nothing) keeps two
  instances from sending the same batch at once. The SQLite store is one instance's: its lease is in
  process.
* Failures to reach the backend raise ``StoreUnavailable``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from revenge.playback.scrobbles import ServiceName
from revenge.scrobblers.model import Link

if TYPE_CHECKING:
    from revenge.config import Settings


class LinkStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, user_id: str, service: ServiceName) -> Link | None: ...

    async def put(self, link: Link) -> None: ...

    async def delete(self, user_id: str, service: ServiceName) -> bool: ...

    async def linked(self) -> list[tuple[str, ServiceName]]: ...

    async def note(self, user_id: str, service: ServiceName, linked_at: int, at: int, *,
                   error: str | None = None, permanent: bool = False) -> None:
        """``error`` None: a success (``last_sent_at`` = ``at``, the error cleared); else the error,
        and with ``permanent`` the link stops."""

    async def acquire(self, user_id: str, service: ServiceName, ttl_ms: int) -> str | None: ...

    async def release(self, user_id: str, service: ServiceName, token: str) -> None: ...


def open_link_store(settings: Settings) -> LinkStore:
    """The store ``settings.store`` names (not yet opened)."""
    if settings.store == "sqlite":
        from revenge.scrobblers.links_sqlite import SqliteLinkStore

        return SqliteLinkStore(settings.data_dir / "scrobblers.db")
    from revenge.scrobblers.links_redis import RedisLinkStore

    return RedisLinkStore(settings.store, settings.store_timeout_seconds)
