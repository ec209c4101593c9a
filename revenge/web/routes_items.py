"""Catalog routes: list and search items, one item, and the files the scanner could not use."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library.cursors import CursorError
from revenge.library.model import ITEM_TYPES, ItemType
from revenge.web.auth import require_admin, require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request
from revenge.web.item_json import item_json
from revenge.web.item_lookup import get_item_or_404
from revenge.web.responses import JSONResponse
from revenge.web.routes_progress import caller_progress
from revenge.web.validate import limit_param

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_QUERY_CHARS = 200
DEFAULT_FAILURES_LIMIT = 100
MAX_FAILURES_LIMIT = 1000


def parse_item_type(raw: str | None) -> ItemType | None:
    if raw is None or raw == "":
        return None
    for item_type in ITEM_TYPES:
        if raw == item_type:
            return item_type
    raise bad_request("type", f"type must be one of {', '.join(ITEM_TYPES)}")


async def list_items(request: Request) -> Response:
    require_user(request)
    params = request.query_params
    item_type = parse_item_type(params.get("type"))
    limit = limit_param(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    q = params.get("q")
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise bad_request("q", f"q must be at most {MAX_QUERY_CHARS} characters")
    cursor = params.get("cursor") or None
    try:
        items, next_cursor = app_state(request).catalog.list_items(
            type=item_type, q=q.strip() if q else None, limit=limit, cursor=cursor)
    except CursorError:
        raise bad_request("cursor", "cursor is not one this server handed out") from None
    art = app_state(request).art.art_ids([i.id for i in items])  # cover art
    return JSONResponse({"items": [item_json(i, with_chapters=False, art_id=art.get(i.id)) for i in items],
                         "next_cursor": next_cursor})


async def get_item(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    body = item_json(item, art_id=app_state(request).art.art_id(item.id))  # cover art
    body["progress"] = await caller_progress(request, user, item)
    return JSONResponse(body)


async def list_failures(request: Request) -> Response:
    """Files and folders the library scan could not use, with the reason (paths relative to their
    configured library root), plus the total count. Admins only: paths are the server's business."""
    require_admin(request)
    limit = limit_param(request.query_params.get("limit"), DEFAULT_FAILURES_LIMIT, MAX_FAILURES_LIMIT)
    failures, total = app_state(request).catalog.failures(limit)
    return JSONResponse({
        "total": total,
        "failures": [
            {"root": f.root, "path": f.relative, "type": f.type, "reason": f.reason, "failed_at": f.failed_at}
            for f in failures
        ],
    })


async def start_scan(request: Request) -> Response:
    """Admins: scan the library folders now (incremental: unchanged files are not probed again). 202
    when a scan started, 409 when one is already running; both answer the scan's status."""
    require_admin(request)
    scans = app_state(request).scans
    if not scans.has_folders:
        raise ApiError(409, "no_library", "no library folders are configured")
    started = scans.start()
    return JSONResponse({"started": started, "scan": scans.status.as_dict()},
                        status_code=202 if started else 409)


routes = [
    Route("/api/v1/items", list_items, methods=["GET"]),
    Route("/api/v1/library/scan", start_scan, methods=["POST"]),
    Route("/api/v1/items/{item_id}", get_item, methods=["GET"]),
    Route("/api/v1/library/failures", list_failures, methods=["GET"]),
]
