"""Playback session endpoints: start (direct or HLS, a signed URL, where to resume), read, heartbeat, stop.

Thin: parse and validate, call ``decide`` and ``SessionService``, answer. A session of another user is
404, exactly like an unknown one, so session ids leak nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library.album_stream import album_item, album_tracks, spans
from revenge.library.model import Item, is_valid_item_id
from revenge.playback.decide import (
    PREFERENCES,
    ClientCapabilities,
    NoCompatibleStream,
    decide,
    is_apple_user_agent,
)
from revenge.playback.service import ItemGone, SessionService
from revenge.playback.sessions import PLAYER_STATES, Kind, Session, SessionCapReached, is_session_id
from revenge.progress import rules as progress_rules
from revenge.progress.model import PROGRESS_EVENTS
from revenge.security.keys import User
from revenge.web.auth import issue_stream_token, require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, error_body, not_found
from revenge.web.item_lookup import find_item
from revenge.web.progress_json import progress_json
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import device_id_value, json_object, non_negative_field, playback_rate_field

PREFIX = "/api/v1/playback/sessions"
MAX_BODY_BYTES = 64 * 1024
MAX_CAPABILITY_ENTRIES = 32
MAX_CAPABILITY_CHARS = 64
MAX_BITRATE = 100_000_000  # bits per second; far above any audio


def _sessions(request: Request) -> SessionService:
    return app_state(request).sessions


async def _read_object(request: Request) -> Mapping[str, Any]:
    return json_object(await read_json(request, MAX_BODY_BYTES))


def _item(request: Request, value: Any) -> Item:
    if value is None:
        raise bad_request("item_id", "item_id is required (or album_id, to play an album gaplessly)")
    if not isinstance(value, str):
        raise bad_request("item_id", "item_id must be 16 characters a-z, 2-7")
    return find_item(request, value)


def _album(request: Request, body: Mapping[str, Any]) -> tuple[Item, int]:
    """``album_id``: the album as one item (:func:`revenge.library.album_stream.album_item`) and its
    timeline's duration in ms."""
    if "item_id" in body:
        raise bad_request("album_id", "give item_id or album_id, not both")
    value = body["album_id"]
    if not isinstance(value, str) or not is_valid_item_id(value):
        raise bad_request("album_id", "album_id must be 16 characters a-z, 2-7")
    tracks = album_tracks(app_state(request).catalog, value)
    if not tracks:
        raise not_found("album", "album_id")
    return album_item(value, tracks[0].album or "", tracks), spans(tracks)[-1].end_ms


def _names(caps: Mapping[str, Any], name: str, required: bool) -> list[str]:
    field = f"capabilities.{name}"
    value = caps.get(name)
    if value is None:
        if required:
            raise bad_request(field, f"{field} is required: a list of names such as \"aac\"")
        return []
    if not isinstance(value, list) or len(value) > MAX_CAPABILITY_ENTRIES:
        raise bad_request(field, f"{field} must be a list of at most {MAX_CAPABILITY_ENTRIES} names")
    for entry in value:
        if not isinstance(entry, str) or not 0 < len(entry) <= MAX_CAPABILITY_CHARS:
            raise bad_request(field, f"{field} entries must be names of 1-{MAX_CAPABILITY_CHARS} characters")
    return value


def capabilities_from_body(value: Any, user_agent: str) -> ClientCapabilities:
    """``capabilities: {codecs, containers?, max_bitrate?, hls?, prefer?}``; ``hls`` defaults to true
    (the server's own players and every HLS library), ``prefer`` to ``direct``; Apple players are
    recognised by their User-Agent."""
    if not isinstance(value, dict):
        raise bad_request("capabilities", "capabilities is required: {codecs, containers, max_bitrate, hls}")
    codecs = _names(value, "codecs", required=True)
    containers = _names(value, "containers", required=False)
    max_bitrate = value.get("max_bitrate")
    if max_bitrate is not None and (isinstance(max_bitrate, bool) or not isinstance(max_bitrate, int)
                                    or not 0 < max_bitrate <= MAX_BITRATE):
        raise bad_request("capabilities.max_bitrate",
                          f"capabilities.max_bitrate must be bits per second, 1..{MAX_BITRATE}, or null")
    hls = value.get("hls", True)
    if not isinstance(hls, bool):
        raise bad_request("capabilities.hls", "capabilities.hls must be true or false")
    prefer = value.get("prefer", "direct")
    if prefer not in PREFERENCES:
        raise bad_request("capabilities.prefer",
                          f"capabilities.prefer must be one of {', '.join(PREFERENCES)}")
    return ClientCapabilities.from_lists(codecs, containers, max_bitrate, hls,
                                         apple=is_apple_user_agent(user_agent), prefer=prefer)


def stream_url(request: Request, session: Session) -> str:
    """The session's signed URL (path and query, relative to the server). Signing is deterministic, so
    reading a session again gives the same URL (until the secret is rotated)."""
    token, _ = issue_stream_token(app_state(request), session.user_id, session.item_id,
                                  session.token_expires_at)
    base = f"/api/v1/{'albums' if session.kind == 'album' else 'stream'}/{session.item_id}"
    if session.mode == "direct":
        return f"{base}/direct?t={token}"
    return f"{base}/playlist.m3u8?t={token}&profiles={','.join(session.profiles)}"


def session_json(request: Request, session: Session) -> dict[str, Any]:
    """Times (``*_at``) in ms since the Unix epoch, positions in seconds, as in the progress API."""
    idle_ms = _sessions(request).idle_ms
    return {
        "session_id": session.id,
        "kind": session.kind,
        "item_id": session.item_id,
        "device_id": session.device_id,
        "decision": session.mode,
        "reasons": list(session.reasons),
        "profiles": list(session.profiles),
        "url": stream_url(request, session),
        "resume_seconds": session.resume_ms / 1000.0,
        "expires_at": session.token_expires_at * 1000,
        "created_at": session.created_ms,
        "last_active_at": session.last_active_ms,
        "idle_timeout_at": session.deadline_ms(idle_ms),
        "position_seconds": session.position_ms / 1000.0,
        "state": session.state,
    }


async def _resume_ms(request: Request, user: User, item: Item, start_seconds: float | None) -> int:
    if start_seconds is not None:
        return progress_rules.clamp_position(round(min(start_seconds, 1e12) * 1000), item.duration_ms)
    progress = app_state(request).progress
    state = await progress.get(user.id, item.id)
    return progress.resume_position_ms(state, item.type)


async def start_session(request: Request) -> Response:
    user = require_user(request)
    body = await _read_object(request)
    kind: Kind = "album" if "album_id" in body else "item"
    if kind == "album":
        item, duration_ms = _album(request, body)
    else:
        item = _item(request, body.get("item_id"))
        duration_ms = item.duration_ms
    device_id = device_id_value(body.get("device_id"),
                                required_message="device_id is required (sessions are kept per device)")
    caps = capabilities_from_body(body.get("capabilities"), request.headers.get("user-agent", ""))
    start_seconds = non_negative_field(body, "start_seconds", required=False)
    state = app_state(request)
    try:
        decision = decide(item, caps, state.settings.hls_ladder)
    except NoCompatibleStream as exc:
        error = error_body("no_compatible_stream", str(exc), "capabilities")
        error["error"]["reasons"] = list(exc.reasons)  # type: ignore[assignment]
        return JSONResponse(error, status_code=422)
    if kind == "album":  # an album starts at its start unless told (progress is per track)
        resume_ms = progress_rules.clamp_position(round(min(start_seconds or 0, 1e12) * 1000), duration_ms)
    else:
        resume_ms = await _resume_ms(request, user, item, start_seconds)
    _, expires_at = issue_stream_token(state, user.id, item.id)
    try:
        session = await state.sessions.start(user.id, device_id, item.id, decision, resume_ms, expires_at,
                                             kind)
    except SessionCapReached as exc:
        retry = str(max(1, math.ceil(state.settings.session_idle_seconds)))
        raise ApiError(429, "too_many_sessions", str(exc), None, {"Retry-After": retry}) from None
    state.metrics.sessions_started.labels(decision.mode, decision.profiles[0] if decision.profiles
                                          else "original").inc()
    return JSONResponse(session_json(request, session), status_code=201)


def _session_id(request: Request) -> str:
    session_id = str(request.path_params["session_id"])
    if not is_session_id(session_id):
        raise bad_request("session_id", "session_id must be the 22-character id a session start answered")
    return session_id


def _no_session() -> ApiError:
    # The same answer for unknown, ended and other users' sessions.
    return not_found("playback session", "session_id")


async def get_session(request: Request) -> Response:
    user = require_user(request)
    session_id = _session_id(request)
    session = await _sessions(request).get(user.id, session_id)
    if session is None:
        raise _no_session()
    return JSONResponse(session_json(request, session))


async def heartbeat(request: Request) -> Response:
    """``{position_seconds, state: playing|paused|buffering|stopped, playback_rate?, event?}``: refreshes
    the session and records the position as a progress update of the session's device (``event``, when
    given, names it: ``start`` for the first report, ``seek`` after a jump; else it follows ``state``)."""
    user = require_user(request)
    session_id = _session_id(request)
    body = await _read_object(request)
    position = non_negative_field(body, "position_seconds", required=True)
    assert position is not None
    player_state = body.get("state")
    if player_state not in PLAYER_STATES:
        raise bad_request("state", f"state must be one of {', '.join(PLAYER_STATES)}")
    rate = playback_rate_field(body)
    event = body.get("event")
    if event is not None and event not in PROGRESS_EVENTS:
        raise bad_request("event", f"event must be one of {', '.join(PROGRESS_EVENTS)}")
    service = _sessions(request)
    try:
        result = await service.heartbeat(user.id, session_id, round(min(position, 1e12) * 1000),
                                         player_state, rate, event)
    except ItemGone:
        raise ApiError(404, "not_found", "the session's item is no longer in the library",
                       "item_id") from None
    if result is None:
        raise _no_session()
    policy = app_state(request).progress.policy(result.item.type)
    answer = {**session_json(request, result.session),
              "progress": progress_json(result.progress, result.item, user.id, policy, with_devices=False)}
    if result.offset_ms is not None:  # an album session: the track playing, where progress landed
        answer["track"] = {"item_id": result.item.id, "offset_seconds": result.offset_ms / 1000.0}
    return JSONResponse(answer)


async def stop_session(request: Request) -> Response:
    user = require_user(request)
    session_id = _session_id(request)
    session = await _sessions(request).stop(user.id, session_id)
    if session is None:
        raise _no_session()
    return Response(status_code=204)


routes = [  # heartbeats first: the most requested (see create_app)
    Route(PREFIX + "/{session_id}/heartbeat", heartbeat, methods=["POST"]),
    Route(PREFIX, start_session, methods=["POST"]),
    Route(PREFIX + "/{session_id}", get_session, methods=["GET"]),
    Route(PREFIX + "/{session_id}", stop_session, methods=["DELETE"]),
]
