"""Bookmarks: ``GET``/``POST /api/v1/items/{item_id}/bookmarks``, ``DELETE …/bookmarks/{bookmark_id}``.

A bookmark is {position_seconds, note}: the position finite and not negative (400 otherwise), clamped to
the item's duration; the note at most 1000 characters. Bookmarks are the caller's own: another user's
bookmark id is not found (404), whatever the item.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library.model import Item
from revenge.playback import bookmarks as rules
from revenge.playback.bookmarks import Bookmark, BookmarkRejected
from revenge.progress import rules as progress_rules
from revenge.progress.service import now_ms
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, not_found
from revenge.web.item_lookup import get_item_or_404
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import json_object, number_field, string_field


def bookmark_json(bookmark: Bookmark, item: Item) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": bookmark.id,
        "item_id": bookmark.item_id,
        "position_seconds": bookmark.position_ms / 1000.0,
        "position_ms": bookmark.position_ms,
        "note": bookmark.note,
        "created_at": bookmark.created_at,
    }
    if item.type == "audiobook":
        chapter = progress_rules.chapter_at(item.chapters, bookmark.position_ms)
        body["chapter"] = None if chapter is None else {"index": chapter.index, "title": chapter.title}
    return body


async def list_bookmarks(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    found = await app_state(request).records.bookmarks(user.id, item.id)
    return JSONResponse({"bookmarks": [bookmark_json(b, item) for b in found]})


async def add_bookmark(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    body = json_object(await read_json(request))
    position = number_field(body, "position_seconds", required=True)
    assert position is not None
    try:
        position_ms = rules.position_ms(position, item.duration_ms)
        note = rules.check_note(string_field(body, "note", ""))
    except BookmarkRejected as exc:
        raise bad_request(exc.field, str(exc)) from None
    bookmark = Bookmark(user.id, item.id, rules.new_bookmark_id(), position_ms, note, now_ms())
    stored = await app_state(request).records.add_bookmark(bookmark, rules.MAX_BOOKMARKS_PER_ITEM)
    if not stored:
        raise ApiError(409, "too_many", f"at most {rules.MAX_BOOKMARKS_PER_ITEM} bookmarks per item")
    return JSONResponse(bookmark_json(bookmark, item), status_code=201)


async def delete_bookmark(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    bookmark_id = str(request.path_params["bookmark_id"])
    if not rules.is_valid_bookmark_id(bookmark_id):
        raise not_found("bookmark", "bookmark_id")
    deleted = await app_state(request).records.delete_bookmark(user.id, item.id, bookmark_id)
    if not deleted:
        raise not_found("bookmark", "bookmark_id")
    return Response(status_code=204)


routes = [
    Route("/api/v1/items/{item_id}/bookmarks", list_bookmarks, methods=["GET"]),
    Route("/api/v1/items/{item_id}/bookmarks", add_bookmark, methods=["POST"]),
    Route("/api/v1/items/{item_id}/bookmarks/{bookmark_id}", delete_bookmark, methods=["DELETE"]),
]
