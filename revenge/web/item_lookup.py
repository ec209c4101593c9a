"""The catalog item a request names, checked before any lookup: the one place ids are validated."""

from __future__ import annotations

from starlette.requests import Request

from revenge.library.catalog import Catalog
from revenge.library.model import Item, is_valid_item_id
from revenge.web.auth import app_state
from revenge.web.errors import bad_request, not_found


def find_item(request: Request, item_id: str, field: str = "item_id") -> Item:
    """The catalog item ``item_id`` (from a path or a body), checked against the id format before any
    lookup: 400, or 404 when there is no such item; errors name ``field`` (``updates[3].item_id``)."""
    return catalog_item(app_state(request).catalog, item_id, field)


def catalog_item(catalog: Catalog, item_id: str, field: str = "item_id") -> Item:
    """``find_item`` for endpoints that hold the catalog rather than a ``Request``."""
    if not is_valid_item_id(item_id):
        raise bad_request(field, "item_id must be 16 characters a-z, 2-7")
    item = catalog.get_item(item_id)
    if item is None:
        raise not_found("item", field)
    return item


def get_item_or_404(request: Request) -> Item:
    """The item of the ``item_id`` path parameter."""
    return find_item(request, str(request.path_params["item_id"]))
