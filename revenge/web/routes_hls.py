"""HLS routes: multivariant playlist, media playlist, init segment and media segments.

Thin: parse and check the request, ask the engine, answer. Players send no headers on segment
requests, so every URI in a playlist carries the caller's signed stream token (``?t=``: the one the
playlist was fetched with, or a fresh one for a bearer-header caller). CORS is answered here (not by a global
middleware) so hls.js on another origin can play; playlists are gzipped here for the same reason
(a global gzip middleware would break Range on direct play).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from revenge.errors import StoreUnavailable
from revenge.hls.decode import SourceError, SourceMissing
from revenge.hls.engine import HlsEngine
from revenge.hls.gain import GAIN_MODES, Gain, gain_factor
from revenge.hls.playlist import MEDIA_TYPE as PLAYLIST_TYPE
from revenge.hls.playlist import media_playlist, multivariant_playlist
from revenge.hls.profiles import PROFILES, Profile, is_offered
from revenge.library.model import Item
from revenge.security.keys import User
from revenge.web.auth import require_stream_user, stream_token_for
from revenge.web.conn import app_state
from revenge.web.errors import MAPPED_ERRORS, ApiError, as_api_error, bad_request, not_found
from revenge.web.item_lookup import get_current_item_or_404

log = logging.getLogger("revenge.hls")

SEGMENT_TYPE = "audio/mp4"
SEGMENT_CACHE = "private, max-age=86400, immutable"
PLAYLIST_CACHE = "private, no-cache"
FALLBACK_PROFILE = "aac-128"  # when none of the configured ladder suits the source
_INDEX_RE = re.compile(r"(0|[1-9][0-9]{0,8})")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Retry-After",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Range",
    "Access-Control-Max-Age": "86400",
}

Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def cors(endpoint: Endpoint) -> Endpoint:
    """Answer preflights, and put the CORS headers on every answer, errors included (a browser
    hides an error status from the player without them)."""

    @wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=PREFLIGHT_HEADERS)
        try:
            response = await endpoint(request)
        except MAPPED_ERRORS as exc:  # a full encode queue or a store outage too
            error = as_api_error(exc)
            raise ApiError(error.status, error.code, error.message, error.field,
                           {**error.headers, **CORS_HEADERS}) from None
        response.headers.update(CORS_HEADERS)
        return response

    return wrapped


def engine_of(request: Request) -> HlsEngine:
    return app_state(request).hls


def credential_query(request: Request, user: User, item: Item) -> str:
    """The query every URI in a playlist carries: the signed stream token for this user and item."""
    return urlencode({"t": stream_token_for(request, user, item.id)})


def media_version(item: Item) -> str:
    """``v`` on init and segment URIs: the source's fingerprint, so a file replaced in place gets
    new URIs and a client never mixes in segments it cached (``immutable``) from the old file."""
    return item.fingerprint[:16]


def check_media_version(request: Request, item: Item) -> None:
    """A ``v`` from an older playlist names audio the server no longer has: 404, reload the playlist.
    (Without ``v``, e.g. a URI built by hand, the current file is served.)"""
    version = request.query_params.get("v")
    if version is not None and version != media_version(item):
        raise ApiError(404, "stale", "the source file changed since this playlist was served; "
                       "fetch the playlist again", "v")


def accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


def playlist_response(request: Request, text: str) -> Response:
    body = text.encode("utf-8")
    headers = {"Cache-Control": PLAYLIST_CACHE, "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding")):
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=PLAYLIST_TYPE, headers=headers)


def profile_for(request: Request, item: Item) -> Profile:
    name = str(request.path_params["profile"])
    profile = PROFILES.get(name)
    if profile is None:
        raise not_found(f"profile {name[:40]!r}", "profile")
    if not is_offered(profile, item.lossless):
        raise ApiError(404, "not_found", f"profile {name!r} is offered for lossless sources only", "profile")
    return profile


def gain_mode(request: Request) -> str | None:
    """``?gain=track|album``: a ReplayGain rendition (None: the plain one)."""
    mode = request.query_params.get("gain")
    if mode is None:
        return None
    if mode not in GAIN_MODES:
        raise bad_request("gain", "gain must be track or album")
    return mode


def gain_of(request: Request, item: Item) -> tuple[str, float]:
    """(the ``gain`` query to carry on in URIs, the linear factor from the item's tags)."""
    mode = gain_mode(request)
    if mode is None:
        return "", 1.0
    return "&" + urlencode({"gain": mode}), gain_factor(app_state(request).catalog.track_tags(item.id), mode)


def segment_index(request: Request) -> int:
    raw = str(request.path_params["index"])
    if not _INDEX_RE.fullmatch(raw):
        raise bad_request("segment", "the segment number must be an integer without leading zeros")
    return int(raw)


async def engine_call(awaitable: Awaitable[T]) -> T:
    """The engine's errors as HTTP answers: a broken file fails that item only. (A full encode queue,
    ``EngineBusy``, is answered 503 by the exception handlers, like every ``Overloaded``.)"""
    try:
        return await awaitable
    except SourceMissing:
        raise ApiError(404, "file_missing", "a file of this item is gone; the next library scan will drop it",
                       "item_id") from None
    except SourceError as exc:
        # The cause names server paths: it goes to the log, and the answer names only the item.
        log.warning("cannot decode: %s", exc)
        raise ApiError(422, "unprocessable_media",
                       "the item's audio cannot be decoded (the server log has the cause)",
                       "item_id") from None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(request: Request, awaitable: Awaitable[T]) -> tuple[bool, T | None]:
    """Await ``awaitable`` unless the client goes away first; then cancel it (a queued encode
    nobody else waits for is abandoned) and answer (False, None)."""
    work = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    if work.cancelled():
        return False, None
    return True, work.result()


def ladder_for(request: Request, item: Item) -> list[str]:
    """The variants to list: ``?profiles=a,b`` (what a playback session chose, in its order) or the
    configured ladder, keeping only what suits the source."""
    raw = request.query_params.get("profiles")
    if raw is not None:
        names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
        if not names or len(names) > len(PROFILES):
            raise bad_request("profiles", "profiles must name 1 to 7 profiles, comma-separated")
        for name in names:
            if name not in PROFILES:
                raise bad_request("profiles", f"unknown profile {name[:40]!r}")
            if not is_offered(PROFILES[name], item.lossless):
                raise bad_request("profiles", f"profile {name!r} is offered for lossless sources only")
        return names
    ladder = app_state(request).settings.hls_ladder
    return [n for n in ladder if is_offered(PROFILES[n], item.lossless)] or [FALLBACK_PROFILE]


@cors
async def multivariant(request: Request) -> Response:
    user = require_stream_user(request)
    item = await get_current_item_or_404(request)
    names = ladder_for(request, item)
    gain, _ = gain_of(request, item)
    engine = engine_of(request)
    variants = await engine_call(asyncio.gather(*(engine.variant(item, PROFILES[n]) for n in names)))
    return playlist_response(request, multivariant_playlist(variants, credential_query(request, user, item)
                                                            + gain))


@cors
async def media(request: Request) -> Response:
    user = require_stream_user(request)
    item = await get_current_item_or_404(request)
    gain, _ = gain_of(request, item)
    rendition = await engine_call(engine_of(request).rendition(item, profile_for(request, item)))
    query = credential_query(request, user, item) + "&" + urlencode({"v": media_version(item)}) + gain
    return playlist_response(request, media_playlist(rendition.plan, query))


async def keep_sessions_alive(request: Request, user: User, item: Item) -> None:
    """A media request is playback activity: it refreshes the idle timer of the caller's sessions on
    this item. A store outage must not stop the music, so it is logged, not raised."""
    try:
        await app_state(request).sessions.touch(user.id, item.id)
    except StoreUnavailable as exc:
        # Debug only: the store logs the outage itself, once, not once per segment.
        log.debug("session touch failed (store unavailable): %s", exc)


async def media_item(request: Request) -> Item:
    """The item an init or segment request plays: the caller may stream it, the URI's version is the
    current file's, and the request counts as activity of the caller's sessions on it."""
    user = require_stream_user(request)
    item = await get_current_item_or_404(request)
    check_media_version(request, item)
    await keep_sessions_alive(request, user, item)
    return item


@cors
async def init(request: Request) -> Response:
    item = await media_item(request)
    data = await engine_call(engine_of(request).init_segment(item, profile_for(request, item)))
    return Response(data, media_type=SEGMENT_TYPE, headers={"Cache-Control": SEGMENT_CACHE})


@cors
async def segment(request: Request) -> Response:
    item = await media_item(request)
    profile = profile_for(request, item)
    index = segment_index(request)
    _, factor = gain_of(request, item)
    return await segment_response(request, item, profile, factor, index)


async def segment_response(request: Request, media: Item, profile: Profile, factor: Gain,
                           index: int) -> Response:
    """Segment ``index`` of ``media``'s rendition: from the cache, else encoded while the client waits."""
    engine = engine_of(request)
    rendition = await engine_call(engine.rendition(media, profile, factor))
    if index >= rendition.plan.count:
        raise ApiError(404, "not_found", f"segment {index} out of range 0..{rendition.plan.count - 1}",
                       "segment")
    data = engine.peek(rendition, index)
    if data is None:
        answered, data = await until_disconnect(request, engine_call(engine.segment(rendition, index)))
        if not answered or data is None:
            return Response(status_code=499)  # the client is gone; nobody reads this
    return Response(data, media_type=SEGMENT_TYPE, headers={"Cache-Control": SEGMENT_CACHE})


_PREFIX = "/api/v1/stream/{item_id}"
_METHODS = ["GET", "HEAD", "OPTIONS"]
routes = [  # segments first: the most requested (see create_app)
    Route(f"{_PREFIX}/{{profile}}/segment{{index}}.m4s", segment, methods=_METHODS),
    Route(f"{_PREFIX}/playlist.m3u8", multivariant, methods=_METHODS),
    Route(f"{_PREFIX}/{{profile}}/index.m3u8", media, methods=_METHODS),
    Route(f"{_PREFIX}/{{profile}}/init.mp4", init, methods=_METHODS),
]
