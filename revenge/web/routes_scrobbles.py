"""Scrobbles and listening stats: parse and validate, call the records store, answer.

``POST /api/v1/playback/scrobble`` {item_id, started_at, listened_seconds, device_id?} records a listen:
201 when new, 200 with ``duplicate: true`` for a listen already recorded (same item and started_at).
``started_at`` is ms since the Unix epoch, after 2000-01-01 and at most 5 minutes in the future (clock
skew); ``listened_seconds`` is at least 0 and at most 3× the item's duration. ``GET
/api/v1/stats/listening?from=&to=`` answers seconds and listens per UTC day and item type.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.playback import scrobbles
from revenge.playback.scrobbles import Scrobble, ScrobbleRejected
from revenge.progress.service import now_ms
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import bad_request
from revenge.web.item_lookup import find_item
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import device_id_value, json_object, number_field, string_field


async def post_scrobble(request: Request) -> Response:
    user = require_user(request)
    received = now_ms()
    body = json_object(await read_json(request))
    item_id = string_field(body, "item_id")
    started = number_field(body, "started_at", required=True)
    listened = number_field(body, "listened_seconds", required=True)
    assert started is not None and listened is not None
    device_id = device_id_value(body.get("device_id"))
    started_at = int(min(started, 1e15))
    if listened < 0:  # before the item lookup: wrong whatever the item
        raise bad_request("listened_seconds", "listened_seconds must not be negative")
    listened_ms = round(min(listened, 1e12) * 1000)
    try:
        scrobbles.check_started_at(started_at, received)
        item = find_item(request, item_id)
        scrobbles.check_listened(listened_ms, item.duration_ms)
    except ScrobbleRejected as exc:
        raise bad_request(exc.field, str(exc)) from None
    record = Scrobble(user_id=user.id, item_id=item.id, item_type=item.type, started_at=started_at,
                      listened_ms=listened_ms, device_id=device_id, source="client", recorded_at=received)
    (result,) = await app_state(request).records.add_scrobbles([record])
    body = {"scrobble": scrobbles.scrobble_json(result.scrobble), "duplicate": not result.created}
    return JSONResponse(body, status_code=201 if result.created else 200)


async def get_listening_stats(request: Request) -> Response:
    user = require_user(request)
    today = dt.datetime.now(dt.UTC).date()
    try:
        first_day, last_day = scrobbles.stats_range(request.query_params.get("from"),
                                                    request.query_params.get("to"), today)
    except ScrobbleRejected as exc:
        raise bad_request(exc.field, str(exc)) from None
    totals = await app_state(request).records.listening_totals(user.id, first_day, last_day)
    return JSONResponse(scrobbles.stats_json(totals, first_day, last_day))


routes = [
    Route("/api/v1/playback/scrobble", post_scrobble, methods=["POST"]),
    Route("/api/v1/stats/listening", get_listening_stats, methods=["GET"]),
]
