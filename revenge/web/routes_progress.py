"""Progress endpoints: parse and validate, call ``ProgressService``, answer. The rules live in
``revenge.progress.rules``; durability and batching in the service."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from revenge.errors import Overloaded, StoreUnavailable
from revenge.library.model import ITEM_TYPES, Item
from revenge.progress import rules
from revenge.progress.model import PROGRESS_EVENTS, ProgressUpdate
from revenge.progress.service import ProgressService, now_ms
from revenge.progress.store import CONTINUE_DEFAULT_LIMIT, CONTINUE_MAX_LIMIT
from revenge.security.keys import User
from revenge.web.auth import require_user
from revenge.web.conn import Conn, app_state
from revenge.web.errors import ApiError, as_api_error, bad_request, error_body
from revenge.web.item_lookup import find_item, get_item_or_404
from revenge.web.progress_json import progress_json
from revenge.web.request_json import read_json, receive_json
from revenge.web.responses import JSONResponse, send_json
from revenge.web.validate import (
    device_id_value,
    json_object,
    limit_param,
    non_negative_field,
    number_field,
    playback_rate_field,
)

BATCH_MAX_UPDATES = 1000
MAX_BODY_BYTES = 1 << 20  # a full batch of 1000 updates is ~200 KB


def _service(conn: Conn) -> ProgressService:
    return app_state(conn).progress


def update_from_body(body: Any, item: Item, user: User, received_ms: int, prefix: str = "") -> ProgressUpdate:
    """Validate one update body (the seed's ``position_seconds``/``duration_seconds`` plus ``event``,
    ``device_id``, ``client_ts``, ``playback_rate``) against ``item``. Errors name the field, prefixed
    with ``prefix`` (``updates[3].`` in a batch). Other fields are ignored (forward compatibility)."""
    body = json_object(body, prefix.rstrip(".") or "body")
    position = non_negative_field(body, "position_seconds", required=True, prefix=prefix)
    assert position is not None
    # Validated but not used: the catalog's duration is authoritative.
    non_negative_field(body, "duration_seconds", required=False, prefix=prefix)
    event = body.get("event", "progress")
    if event not in PROGRESS_EVENTS:
        raise bad_request(prefix + "event", f"event must be one of {', '.join(PROGRESS_EVENTS)}")
    device_id = device_id_value(body.get("device_id"), prefix + "device_id")
    client_ts = number_field(body, "client_ts", required=False, prefix=prefix)
    if client_ts is not None and client_ts < 0:
        raise bad_request(prefix + "client_ts", "client_ts must be ms since the Unix epoch, not negative")
    rate = playback_rate_field(body, prefix)
    return rules.make_update(
        user.id, item.id, item.type, item.duration_ms,
        position_ms=round(min(position, 1e15) * 1000),
        event=event,
        device_id=device_id,
        client_ts_ms=None if client_ts is None else int(client_ts),
        received_ms=received_ms,
        playback_rate=rate,
    )


async def caller_progress(request: Request, user: User, item: Item) -> dict[str, Any]:
    """The caller's progress in ``item`` as in GET …/progress/{item_id} (for the single-item response)."""
    service = _service(request)
    state = await service.get(user.id, item.id)
    return progress_json(state, item, user.id, service.policy(item.type))


async def get_progress(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    return JSONResponse(await caller_progress(request, user, item))


class PutProgress:
    """``PUT …/progress/{item_id}``, the most frequent request a player makes, as a plain ASGI endpoint:
    ``Route`` hands it the scope with no ``Request``/``Response`` objects in between, whose cost was about
    that of the rest of the request. Same steps and errors as the other endpoints (``ApiError``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = require_user(scope)
        received = now_ms()
        item = get_item_or_404(scope)
        update = update_from_body(await receive_json(scope, receive, MAX_BODY_BYTES), item, user, received)
        service = _service(scope)
        progress = await service.update(update)
        # Write answers leave the device rows out (GET has them): constant-size, whatever the device count.
        await send_json(send, progress_json(progress, item, user.id, service.policy(item.type),
                                            with_devices=False))


async def post_progress_batch(request: Request) -> Response:
    """Up to 1000 updates, each with its ``item_id``; one result each, in order. An invalid update gets
    its own 4xx result and does not fail the others; a store outage fails the updates it hit (503), and
    the answer then carries ``Retry-After`` like a whole-request 503 would."""
    user = require_user(request)
    received = now_ms()
    body = await read_json(request, MAX_BODY_BYTES)
    raw = body.get("updates") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        raise bad_request("updates", "expected {\"updates\": [ ... ]}")
    if len(raw) > BATCH_MAX_UPDATES:
        raise bad_request("updates", f"at most {BATCH_MAX_UPDATES} updates per batch")
    results: list[dict[str, Any] | None] = [None] * len(raw)
    accepted: list[tuple[int, ProgressUpdate, Item]] = []
    for index, entry in enumerate(raw):
        prefix = f"updates[{index}]."
        item_id = entry.get("item_id") if isinstance(entry, dict) else None
        try:
            json_object(entry, f"updates[{index}]")
            if not isinstance(item_id, str):
                raise bad_request(prefix + "item_id", "item_id is required")
            item = find_item(request, item_id, prefix + "item_id")
            accepted.append((index, update_from_body(entry, item, user, received, prefix), item))
        except ApiError as exc:
            results[index] = {"item_id": item_id if isinstance(item_id, str) else None, "status": exc.status,
                              **error_body(exc.code, exc.message, exc.field)}
    service = _service(request)
    headers: dict[str, str] = {}
    if accepted:
        outcomes = await service.update_many([update for _, update, _ in accepted])
        for (index, update, item), outcome in zip(accepted, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, StoreUnavailable | Overloaded):
                    raise outcome
                error = as_api_error(outcome)
                headers.update(error.headers)  # Retry-After: the client replays the failed ones later
                results[index] = {"item_id": update.item_id, "status": error.status,
                                  **error_body(error.code, error.message)}
            else:
                policy = service.policy(item.type)
                results[index] = {"item_id": update.item_id, "status": 200,
                                  "progress": progress_json(outcome, item, user.id, policy,
                                                            with_devices=False)}
    return JSONResponse({"results": results}, headers=headers)


def _item_summary(item: Item) -> dict[str, Any]:
    return {"id": item.id, "type": item.type, "title": item.title, "artist": item.artist,
            "album": item.album, "duration_ms": item.duration_ms}


async def get_continue(request: Request) -> Response:
    user = require_user(request)
    item_type = request.query_params.get("type") or None
    if item_type is not None and item_type not in ITEM_TYPES:
        raise bad_request("type", f"type must be one of {', '.join(ITEM_TYPES)}")
    limit = limit_param(request.query_params.get("limit"), CONTINUE_DEFAULT_LIMIT, CONTINUE_MAX_LIMIT)
    service = _service(request)
    states = await service.continue_listening(user.id, item_type, limit)  # type: ignore[arg-type]
    catalog = app_state(request).catalog
    entries = []
    for state in states:
        item = catalog.get_item(state.item_id)
        if item is None:  # removed from the library since it was played
            continue
        entries.append({"item": _item_summary(item),
                        "progress": progress_json(state, item, user.id, service.policy(item.type),
                                                  with_devices=False)})
    return JSONResponse({"items": entries})


async def _user_action(request: Request, action: str, flag: bool) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    service = _service(request)
    if action == "played":
        state = await service.mark_played(user.id, item.id, item.type, item.duration_ms, flag)
    else:
        state = await service.set_hidden(user.id, item.id, item.type, item.duration_ms, flag)
    return JSONResponse(progress_json(state, item, user.id, service.policy(item.type)))


async def post_played(request: Request) -> Response:
    return await _user_action(request, "played", True)


async def delete_played(request: Request) -> Response:
    return await _user_action(request, "played", False)


async def post_hidden(request: Request) -> Response:
    return await _user_action(request, "hidden", True)


async def delete_hidden(request: Request) -> Response:
    return await _user_action(request, "hidden", False)


async def delete_progress(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    await _service(request).reset(user.id, item.id)
    return Response(status_code=204)


PREFIX = "/api/v1/playback"
# Served by FastPath ahead of the router (see create_app), and listed in the router too.
fast_routes = [Route(PREFIX + "/progress/{item_id}", PutProgress(), methods=["PUT"])]
routes = [
    *fast_routes,
    Route(PREFIX + "/progress:batch", post_progress_batch, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}", get_progress, methods=["GET"]),
    Route(PREFIX + "/progress/{item_id}", delete_progress, methods=["DELETE"]),
    Route(PREFIX + "/progress/{item_id}/played", post_played, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}/played", delete_played, methods=["DELETE"]),
    Route(PREFIX + "/progress/{item_id}/hidden", post_hidden, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}/hidden", delete_hidden, methods=["DELETE"]),
    Route(PREFIX + "/continue", get_continue, methods=["GET"]),
]
