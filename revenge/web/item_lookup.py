"""The catalog item a request names, checked before any lookup: the one place ids are validated."""

from __future__ import annotations

import anyio.to_thread

from revenge.library.freshness import is_fresh, refresh_current
from revenge.library.model import Item, is_valid_item_id
from revenge.web.conn import Conn, app_state
from revenge.web.errors import ApiError, bad_request, not_found


def find_item(conn: Conn, item_id: str, field: str = "item_id") -> Item:
    """The catalog item ``item_id`` (from a path or a body), checked against the id format before any
    lookup: 400, or 404 when there is no such item; errors name ``field`` (``updates[3].item_id``)."""
    if not is_valid_item_id(item_id):
        raise bad_request(field, "item_id must be 16 characters a-z, 2-7")
    item = app_state(conn).catalog.get_item(item_id)
    if item is None:
        raise not_found("item", field)
    return item


def get_item_or_404(conn: Conn) -> Item:
    """The item of the ``item_id`` path parameter."""
    return find_item(conn, str(conn["path_params"]["item_id"]))


async def get_current_item_or_404(conn: Conn) -> Item:
    """``get_item_or_404`` for the routes that serve media: the item as its files are now. A file
    replaced in place since the scan is probed again (in a thread) and served under its new
    fingerprint; one that is gone or unreadable is dropped from the catalog: 404."""
    item = get_item_or_404(conn)
    if is_fresh(item):
        return item
    state = app_state(conn)
    current = await anyio.to_thread.run_sync(refresh_current, state.settings, state.catalog, item.id)
    if current is None:
        raise ApiError(404, "file_missing", "the item's file is gone or no longer readable; it was dropped "
                       "from the library (GET /api/v1/library/failures says why)", "item_id")
    return current
