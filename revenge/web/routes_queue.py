"""The play queue, per user and shared by the user's devices: ``GET``/``PUT``/``PATCH /api/v1/queue``,
``POST /api/v1/queue/next`` and ``…/previous``. The rules are in ``revenge.playback.queue``.

Every change is ``{version, device_id?, ...}``: based on another version than the stored one it is a
409 whose body carries the current queue (``{"error": …, "queue": …}``), so a device never overwrites a
change it has not seen. Entries are catalog item ids: an unknown one is a 400 naming it (``items[3]``,
``ops[1].items[0]``); more than 10 000 entries is a 413.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library.catalog import Catalog
from revenge.library.model import is_valid_item_id
from revenge.playback import queue as rules
from revenge.playback.queue import Op, Queue, QueueError, QueueTooLarge
from revenge.playback.queue_service import QueueConflict
from revenge.progress.service import now_ms
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, error_body
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import device_id_value, int_field, json_object, non_negative_field

MAX_BODY_BYTES = 1024 * 1024  # 10 000 item ids in JSON are about 190 KB
MAX_OPS = 100
MAX_POSITION_SECONDS = 10**9


def queue_json(queue: Queue) -> dict[str, Any]:
    return {
        "version": queue.version,
        "items": list(queue.entries),
        "current_index": queue.current,
        "current_item_id": queue.current_item,
        "position_seconds": queue.position_ms / 1000.0,
        "position_ms": queue.position_ms,
        "repeat": queue.repeat,
        "shuffled": queue.shuffled,
        "shuffle_seed": queue.shuffle_seed,
        "history": list(queue.history),
        "changed_at": queue.changed_at,
        "changed_by": queue.changed_by or None,
    }


def _position_ms(body: Mapping[str, Any], prefix: str = "") -> int:
    seconds = non_negative_field(body, "position_seconds", required=False, prefix=prefix)
    if seconds is None:
        return 0
    if seconds > MAX_POSITION_SECONDS:
        raise bad_request(prefix + "position_seconds",
                          f"position_seconds must be at most {MAX_POSITION_SECONDS}")
    return round(seconds * 1000)


def _items_field(body: Mapping[str, Any], prefix: str = "") -> tuple[str, ...]:
    """The ids of ``items`` (checked against the catalog later, all at once): 413 past the bound."""
    value = body.get("items")
    field = prefix + "items"
    if not isinstance(value, list):
        raise bad_request(field, "items must be a list of item ids")
    if len(value) > rules.MAX_ENTRIES:
        raise ApiError(413, "too_large", f"a queue holds at most {rules.MAX_ENTRIES} entries", field)
    for index, item_id in enumerate(value):
        if not isinstance(item_id, str) or not is_valid_item_id(item_id):
            raise bad_request(f"{field}[{index}]", "item ids are 16 characters a-z, 2-7")
    return tuple(value)


def _parse_op(raw: Any, prefix: str) -> tuple[Op, tuple[str, ...]]:
    """One operation of a PATCH and the item ids it adds."""
    op = json_object(raw, prefix)
    name = op.get("op")
    dot = prefix + "."
    if name in ("append", "insert_next"):
        items = _items_field(op, dot)
        return (rules.Append(items, prefix) if name == "append" else rules.InsertNext(items, prefix)), items
    if name == "move":
        return rules.Move(int_field(op, "from", dot), int_field(op, "to", dot), prefix), ()  # type: ignore[arg-type]
    if name == "remove":
        return rules.Remove(int_field(op, "index", dot), prefix), ()  # type: ignore[arg-type]
    if name == "clear":
        return rules.Clear(prefix), ()
    if name == "set_current":
        index = int_field(op, "index", dot)
        return rules.SetCurrent(index, _position_ms(op, dot), prefix), ()  # type: ignore[arg-type]
    if name == "shuffle":
        seed = int_field(op, "seed", dot, required=False)
        return rules.Shuffle(secrets.randbelow(2**31) if seed is None else seed, prefix), ()
    if name == "unshuffle":
        return rules.Unshuffle(prefix), ()
    if name == "repeat":
        mode = op.get("mode")
        if mode not in rules.REPEAT_MODES:
            raise bad_request(dot + "mode", "mode must be one of off, all, one")
        return rules.Repeat(mode, prefix), ()
    raise bad_request(dot + "op", "op must be one of append, insert_next, move, remove, clear, set_current, "
                      "shuffle, unshuffle, repeat")


def _unknown_items(catalog: Catalog, groups: Sequence[tuple[str, tuple[str, ...]]]) -> str | None:
    """The field of the first id (``items[3]``) that is not in the catalog, or ``None``."""
    known: dict[str, bool] = {}
    for field, items in groups:
        for index, item_id in enumerate(items):
            if item_id not in known:
                known[item_id] = catalog.get_item(item_id) is not None
            if not known[item_id]:
                return f"{field}[{index}]"
    return None


async def _check_items(request: Request, groups: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    if not any(items for _, items in groups):
        return
    catalog = app_state(request).catalog
    field = await anyio.to_thread.run_sync(_unknown_items, catalog, groups)
    if field is not None:
        raise bad_request(field, "no such item in the catalog", "unknown_item")


async def _change(request: Request, body: Mapping[str, Any], ops: Sequence[Op]) -> Response:
    user = require_user(request)
    version = int_field(body, "version")
    assert version is not None
    device_id = device_id_value(body.get("device_id"))
    try:
        queue = await app_state(request).queue.change(user.id, version, ops, device_id, now_ms())
    except QueueConflict as exc:
        error = error_body("conflict", f"the queue is at version {exc.current.version}; "
                           "apply the change to this queue and send it again", "version")
        return JSONResponse({**error, "queue": queue_json(exc.current)}, status_code=409)
    except QueueTooLarge as exc:
        raise ApiError(413, "too_large", str(exc), exc.field) from None
    except QueueError as exc:
        raise bad_request(exc.field, str(exc)) from None
    return JSONResponse(queue_json(queue))


async def _body(request: Request) -> Mapping[str, Any]:
    require_user(request)  # 401 before reading a body
    return json_object(await read_json(request, MAX_BODY_BYTES))


async def get_queue(request: Request) -> Response:
    user = require_user(request)
    return JSONResponse(queue_json(await app_state(request).queue.get(user.id)))


async def put_queue(request: Request) -> Response:
    body = await _body(request)
    items = _items_field(body)
    current = int_field(body, "current_index", required=False)
    ops: list[Op] = [rules.Replace(items, current, _position_ms(body))]
    repeat = body.get("repeat")
    if repeat is not None:
        if repeat not in rules.REPEAT_MODES:
            raise bad_request("repeat", "repeat must be one of off, all, one")
        ops.append(rules.Repeat(repeat))
    await _check_items(request, [("items", items)])
    return await _change(request, body, ops)


async def patch_queue(request: Request) -> Response:
    body = await _body(request)
    raw_ops = body.get("ops")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise bad_request("ops", "ops must be a non-empty list of operations")
    if len(raw_ops) > MAX_OPS:
        raise bad_request("ops", f"at most {MAX_OPS} operations per change")
    ops: list[Op] = []
    groups: list[tuple[str, tuple[str, ...]]] = []
    for index, raw in enumerate(raw_ops):
        op, items = _parse_op(raw, f"ops[{index}]")
        ops.append(op)
        groups.append((f"ops[{index}].items", items))
    await _check_items(request, groups)
    return await _change(request, body, ops)


async def next_entry(request: Request) -> Response:
    return await _change(request, await _body(request), [rules.Next()])


async def previous_entry(request: Request) -> Response:
    return await _change(request, await _body(request), [rules.Previous()])


routes = [
    Route("/api/v1/queue", get_queue, methods=["GET"]),
    Route("/api/v1/queue", put_queue, methods=["PUT"]),
    Route("/api/v1/queue", patch_queue, methods=["PATCH"]),
    Route("/api/v1/queue/next", next_entry, methods=["POST"]),
    Route("/api/v1/queue/previous", previous_entry, methods=["POST"]),
]
