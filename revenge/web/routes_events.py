"""Live events and remote control: ``POST /api/v1/events/token``, ``GET /api/v1/events`` (Server-Sent
Events), ``GET /api/v1/devices``, ``POST /api/v1/devices/{device_id}/commands``.

Browsers cannot send headers on ``EventSource``, and an API key in a URL ends up in logs: a stream is
opened with a token from ``POST /api/v1/events/token`` (the stream-URL signing, bound to the user and
the device, valid ``events_token_ttl_seconds`` to open it; the stream then stays open), or with the
bearer header. ``Last-Event-ID`` (header, or ``last_event_id`` in the query for a client that opens a
new ``EventSource`` itself) resumes from the user's backlog, else the stream starts with ``resync``.

The stream is plain ASGI (no sse-starlette): one writer per stream that sleeps on its subscriber until
there is an event or a heartbeat is due, and one task that waits for the client to go away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from revenge.http_guard import ENDLESS
from revenge.playback.devices import CommandError, parse_command
from revenge.playback.event_service import EventService, NothingPlaying, Opened, UnknownDevice
from revenge.playback.events import HEARTBEAT, READY, RESYNC, event_frame, sse_frame
from revenge.progress.model import is_device_id
from revenge.security.keys import User
from revenge.security.signing import TokenError
from revenge.state import AppState
from revenge.web.auth import bearer_key, issue_stream_token, require_user, verify_token
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import device_id_value, json_object

MIN_SEND_TIMEOUT_SECONDS = 10.0  # a client that takes no bytes for this long is let go
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events on at once
    (b"connection", b"close"),  # an ended stream closes its connection (a dropped client's with it)
]
_DEVICE_REQUIRED = "device_id is required: the device this stream is for"


def _events_item(device_id: str) -> str:
    """What an events token is signed for in place of a stream's item id (item ids have no colon)."""
    return f"events:{device_id}"


def _token_user(state: AppState, token: str, device_id: str) -> User:
    try:
        grant = verify_token(state, token, _events_item(device_id))
    except TokenError as exc:
        code = "token_expired" if exc.reason == "expired" else "invalid_token"
        message = "events token has expired: get a new one" if code == "token_expired" else \
            "events token is not valid for this device"
        raise ApiError(403, code, message, "t") from None
    user = state.users.by_id(grant.user_id)
    if user is None:
        raise ApiError(403, "invalid_token", "the user of this events token no longer exists", "t")
    return user


async def events_token(request: Request) -> Response:
    user = require_user(request)
    body = json_object(await read_json(request))
    device_id = device_id_value(body.get("device_id"), required_message=_DEVICE_REQUIRED)
    state = app_state(request)
    token, expires_at = issue_stream_token(state, user.id, _events_item(device_id),
                                           int(time.time()) + state.settings.events_token_ttl_seconds)
    url = f"/api/v1/events?device_id={device_id}&t={token}"
    return JSONResponse({"token": token, "expires_at": expires_at, "device_id": device_id, "url": url})


def _events(request: Request) -> EventService:
    return app_state(request).events


async def events_stream(request: Request) -> Response:
    state = app_state(request)
    params = request.query_params
    raw_device = params.get("device_id")
    if bearer_key(request) is not None:
        user = require_user(request)
        device_id = device_id_value(raw_device)
    else:
        token = params.get("t")
        if not token:
            raise ApiError(401, "unauthorized",
                           "missing credentials: ?t= (POST /api/v1/events/token) or Authorization: Bearer",
                           "t", {"WWW-Authenticate": 'Bearer realm="revenge"'})
        device_id = device_id_value(raw_device, required_message=_DEVICE_REQUIRED)
        user = _token_user(state, token, device_id)
    last_event_id = request.headers.get("last-event-id") or params.get("last_event_id") or None
    if last_event_id is not None and len(last_event_id) > 64:
        raise bad_request("last_event_id", "last_event_id is at most 64 characters")
    opened = await state.events.open_stream(user.id, device_id, last_event_id)
    send_timeout = max(MIN_SEND_TIMEOUT_SECONDS, 2 * state.settings.events_heartbeat_seconds)
    return EventStream(state.events, opened, last_event_id, state.settings.events_heartbeat_seconds,
                       send_timeout)


class EventStream(Response):
    """The ASGI response of one stream (see the module docstring)."""

    def __init__(self, service: EventService, opened: Opened, last_event_id: str | None,
                 heartbeat_seconds: float, send_timeout: float) -> None:
        super().__init__()
        self.service = service
        self.opened = opened
        self.last_event_id = last_event_id
        self.heartbeat = heartbeat_seconds
        self.send_timeout = send_timeout

    def _opening(self) -> bytes:
        sub, replay = self.opened.subscriber, self.opened.replay
        resumed = self.last_event_id is not None and replay.missed is not None
        ready = orjson.dumps({"device_id": sub.device_id, "resumed": resumed})
        parts = [b"retry: 1000\n\n", sse_frame(READY, ready)]
        if replay.missed is None:
            parts.append(sse_frame(RESYNC, b'{"reason":"backlog"}', replay.newest_id))
        else:
            parts.extend(event_frame(e) for e in self.service.missed_for(sub, replay.missed))
        return b"".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.opened.subscriber
        scope[ENDLESS] = True  # the server closes it at shutdown instead of waiting for it
        watcher = asyncio.create_task(_until_disconnect(receive, sub.close))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            await self._send(send, self._opening())
            while True:
                await sub.wait(self.heartbeat)
                if sub.closed:
                    return
                if sub.overflowed:
                    await self._send(send, sse_frame(RESYNC, b'{"reason":"too_slow"}', sub.newest_id))
                    break
                if sub.buffer:
                    chunk = b"".join(event_frame(e) for e in sub.buffer)
                    sub.buffer.clear()
                else:
                    chunk = HEARTBEAT
                await self._send(send, chunk)
            async with asyncio.timeout(self.send_timeout):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            return  # a client that takes nothing: uvicorn closes the connection when we return
        finally:
            watcher.cancel()
            await self.service.close_stream(sub)

    async def _send(self, send: Send, body: bytes) -> None:
        async with asyncio.timeout(self.send_timeout):
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _until_disconnect(receive: Receive, on_disconnect: Any) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                on_disconnect()
                return


async def list_devices(request: Request) -> Response:
    user = require_user(request)
    return JSONResponse({"devices": await _events(request).devices(user.id)})


async def send_command(request: Request) -> Response:
    user = require_user(request)
    device_id = str(request.path_params["device_id"])
    if not is_device_id(device_id):
        raise bad_request("device_id", "device_id must be 1-64 characters of letters, digits, . _ : @ -")
    body = json_object(await read_json(request))
    sender = device_id_value(body.get("from_device"), "from_device")
    try:
        command = parse_command(body, is_device_id)
    except CommandError as exc:
        raise bad_request(exc.field, str(exc)) from None
    try:
        await _events(request).command(user.id, sender, device_id, command)
    except UnknownDevice as exc:
        raise ApiError(404, "not_found", str(exc), exc.field) from None
    except NothingPlaying as exc:
        raise ApiError(409, "nothing_playing", str(exc), "device_id") from None
    return JSONResponse({"device_id": device_id, "command": command.payload()}, status_code=202)


routes = [
    Route("/api/v1/events/token", events_token, methods=["POST"]),
    Route("/api/v1/events", events_stream, methods=["GET"]),
    Route("/api/v1/devices", list_devices, methods=["GET"]),
    Route("/api/v1/devices/{device_id}/commands", send_command, methods=["POST"]),
]
