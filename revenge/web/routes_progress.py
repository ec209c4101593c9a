"""Progress endpoints: parse and validate, call ``ProgressService``, answer. The rules live in
``revenge.progress.rules``; durability and batching in the service."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from revenge.library.model import ITEM_TYPES, Item
from revenge.progress import rules
from revenge.progress.batcher import BatcherOverloaded
from revenge.progress.model import PROGRESS_EVENTS, ProgressUpdate
from revenge.progress.service import ProgressService, now_ms
from revenge.progress.store import CONTINUE_DEFAULT_LIMIT, CONTINUE_MAX_LIMIT, StoreUnavailable
from revenge.security.keys import User
from revenge.state import AppState
from revenge.web.auth import app_state, require_user, user_of
from revenge.web.errors import ApiError, bad_request, error_body, unavailable
from revenge.web.item_lookup import catalog_item, find_item, get_item_or_404
from revenge.web.progress_json import progress_json
from revenge.web.request_json import header_value, json_object, number_field, read_json, receive_json
from revenge.web.responses import JSONResponse, send_json

BATCH_MAX_UPDATES = 1000
MAX_BODY_BYTES = 1 << 20  # a full batch of 1000 updates is ~200 KB
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
DEFAULT_DEVICE_ID = "unknown"  # clients of the seed's shape send no device id


def _service(request: Request) -> ProgressService:
    return app_state(request).progress


def update_from_body(body: Any, item: Item, user: User, received_ms: int, prefix: str = "") -> ProgressUpdate:
    """Validate one update body (the seed's ``position_seconds``/``duration_seconds`` plus ``event``,
    ``device_id``, ``client_ts``, ``playback_rate``) against ``item``. Errors name the field, prefixed
    with ``prefix`` (``updates[3].`` in a batch). Other fields are ignored (forward compatibility)."""
    body = json_object(body, prefix.rstrip(".") or "body")
    position = number_field(body, "position_seconds", required=True, prefix=prefix)
    assert position is not None
    if position < 0:
        raise bad_request(prefix + "position_seconds", "position_seconds must not be negative")
    duration = number_field(body, "duration_seconds", required=False, prefix=prefix)
    if duration is not None and duration < 0:
        # Validated but not used: the catalog's duration is authoritative.
        raise bad_request(prefix + "duration_seconds", "duration_seconds must not be negative")
    event = body.get("event", "progress")
    if event not in PROGRESS_EVENTS:
        raise bad_request(prefix + "event", f"event must be one of {', '.join(PROGRESS_EVENTS)}")
    device_id = body.get("device_id", DEFAULT_DEVICE_ID)
    if not isinstance(device_id, str) or not DEVICE_ID_RE.match(device_id):
        raise bad_request(prefix + "device_id",
                          "device_id must be 1-64 characters of letters, digits, . _ : @ -")
    client_ts = number_field(body, "client_ts", required=False, prefix=prefix)
    if client_ts is not None and client_ts < 0:
        raise bad_request(prefix + "client_ts", "client_ts must be ms since the Unix epoch, not negative")
    rate = number_field(body, "playback_rate", required=False, prefix=prefix)
    if rate is not None and not rules.is_valid_playback_rate(rate):
        raise bad_request(prefix + "playback_rate", rules.PLAYBACK_RATE_MESSAGE)
    return rules.make_update(
        user.id, item.id, item.type, item.duration_ms,
        position_ms=round(min(position, 1e15) * 1000),
        event=event,
        device_id=device_id,
        client_ts_ms=None if client_ts is None else int(client_ts),
        received_ms=received_ms,
        playback_rate=1.0 if rate is None else rate,
    )


async def caller_progress(request: Request, user: User, item: Item) -> dict[str, Any]:
    """The caller's progress in ``item`` as in GET …/progress/{item_id} (for the single-item response)."""
    service = _service(request)
    try:
        state = await service.get(user.id, item.id)
    except StoreUnavailable as exc:
        raise _store_error(exc) from None
    return progress_json(state, item, user.id, service.policy(item.type))


def _store_error(exc: Exception) -> ApiError:
    if isinstance(exc, BatcherOverloaded):
        return unavailable("too many progress updates waiting; retry shortly", 1, "overloaded")
    return unavailable("progress store unavailable; retry shortly", 1)


async def get_progress(request: Request) -> Response:
    user = require_user(request)
    item = get_item_or_404(request)
    return JSONResponse(await caller_progress(request, user, item))


class PutProgress:
    """``PUT …/progress/{item_id}``, the most frequent request a player makes, as a plain ASGI endpoint:
    ``Route`` hands it the scope with no ``Request``/``Response`` objects in between, whose cost was about
    that of the rest of the request. Same steps and errors as the other endpoints (``ApiError``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["state"]["revenge"]
        user = user_of(state, header_value(scope, b"authorization"))
        received = now_ms()
        item = catalog_item(state.catalog, scope["path_params"]["item_id"])
        update = update_from_body(await receive_json(scope, receive, MAX_BODY_BYTES), item, user, received)
        service = state.progress
        try:
            progress = await service.update(update)
        except (StoreUnavailable, BatcherOverloaded) as exc:
            raise _store_error(exc) from None
        # Write answers leave the device rows out (GET has them): constant-size, whatever the device count.
        await send_json(send, progress_json(progress, item, user.id, service.policy(item.type),
                                            with_devices=False))


async def post_progress_batch(request: Request) -> Response:
    """Up to 1000 updates, each with its ``item_id``; one result each, in order. An invalid update gets
    its own 4xx result and does not fail the others; a store outage fails the updates it hit (503)."""
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
    if accepted:
        try:
            outcomes = await service.update_many([update for _, update, _ in accepted])
        except BatcherOverloaded as exc:
            raise _store_error(exc) from None
        for (index, update, item), outcome in zip(accepted, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, StoreUnavailable | BatcherOverloaded):
                    raise outcome
                error = _store_error(outcome)
                results[index] = {"item_id": update.item_id, "status": error.status,
                                  **error_body(error.code, error.message)}
            else:
                policy = service.policy(item.type)
                results[index] = {"item_id": update.item_id, "status": 200,
                                  "progress": progress_json(outcome, item, user.id, policy,
                                                            with_devices=False)}
    return JSONResponse({"results": results})


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return CONTINUE_DEFAULT_LIMIT
    # ASCII digits only (str.isdigit() is true for "²", which int() refuses), and few of them (int() refuses
    # more than 4300).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not 1 <= int(raw) <= CONTINUE_MAX_LIMIT:
        raise bad_request("limit", f"limit must be an integer 1..{CONTINUE_MAX_LIMIT}")
    return int(raw)


def _item_summary(item: Item) -> dict[str, Any]:
    return {"id": item.id, "type": item.type, "title": item.title, "artist": item.artist,
            "album": item.album, "duration_ms": item.duration_ms}


async def get_continue(request: Request) -> Response:
    user = require_user(request)
    item_type = request.query_params.get("type") or None
    if item_type is not None and item_type not in ITEM_TYPES:
        raise bad_request("type", f"type must be one of {', '.join(ITEM_TYPES)}")
    limit = _limit(request)
    service = _service(request)
    try:
        states = await service.continue_listening(user.id, item_type, limit)  # type: ignore[arg-type]
    except StoreUnavailable as exc:
        raise _store_error(exc) from None
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
    try:
        if action == "played":
            state = await service.mark_played(user.id, item.id, item.type, item.duration_ms, flag)
        else:
            state = await service.set_hidden(user.id, item.id, item.type, item.duration_ms, flag)
    except StoreUnavailable as exc:
        raise _store_error(exc) from None
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
    try:
        await _service(request).reset(user.id, item.id)
    except StoreUnavailable as exc:
        raise _store_error(exc) from None
    return Response(status_code=204)


PREFIX = "/api/v1/playback"
# Served by DirectRoutes ahead of the router (see create_app), and listed in the router too.
direct_routes = [Route(PREFIX + "/progress/{item_id}", PutProgress(), methods=["PUT"])]
routes = [
    *direct_routes,
    Route(PREFIX + "/progress:batch", post_progress_batch, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}", get_progress, methods=["GET"]),
    Route(PREFIX + "/progress/{item_id}", delete_progress, methods=["DELETE"]),
    Route(PREFIX + "/progress/{item_id}/played", post_played, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}/played", delete_played, methods=["DELETE"]),
    Route(PREFIX + "/progress/{item_id}/hidden", post_hidden, methods=["POST"]),
    Route(PREFIX + "/progress/{item_id}/hidden", delete_hidden, methods=["DELETE"]),
    Route(PREFIX + "/continue", get_continue, methods=["GET"]),
]
