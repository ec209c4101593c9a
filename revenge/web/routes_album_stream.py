"""Gapless albums: an album's tracks as one HLS timeline, its track boundaries, and progress that
lands on the track.

The album is a synthetic item (:func:`revenge.library.album_stream.album_item`) the HLS engine
streams like a multi-file book: one exact timeline, resampled to one rendition format, so any HLS
player plays the album without a gap. Stream tokens are bound to the album id.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.hls.gain import Gain, gain_factor, per_file
from revenge.hls.playlist import DateRange, media_playlist, multivariant_playlist
from revenge.hls.profiles import PROFILES
from revenge.library.album_stream import album_item, album_tracks, locate, spans
from revenge.library.model import Item, is_valid_item_id
from revenge.progress.service import now_ms
from revenge.security.keys import User
from revenge.web.auth import require_stream_user, require_user, stream_token_for
from revenge.web.conn import app_state
from revenge.web.errors import bad_request, not_found
from revenge.web.progress_json import progress_json
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.routes_hls import (
    SEGMENT_CACHE,
    SEGMENT_TYPE,
    check_media_version,
    cors,
    engine_call,
    engine_of,
    gain_mode,
    keep_sessions_alive,
    ladder_for,
    media_version,
    playlist_response,
    profile_for,
    segment_index,
    segment_response,
)
from revenge.web.routes_progress import MAX_BODY_BYTES, update_from_body
from revenge.web.validate import json_object, non_negative_field

TRACK_CLASS = "com.revenge.track"


def _album_id(request: Request) -> str:
    value = str(request.path_params["album_id"])
    if not is_valid_item_id(value):
        raise bad_request("album_id", "album_id must be 16 characters a-z, 2-7")
    return value


def _tracks(request: Request, album_id: str) -> list[Item]:
    tracks = album_tracks(app_state(request).catalog, album_id)
    if not tracks:
        raise not_found("album", "album_id")
    return tracks


def _album(request: Request) -> tuple[User, Item, list[Item]]:
    """The caller (checked first: 401/403 before 404), the album as one item, and its tracks."""
    album_id = _album_id(request)
    user = require_stream_user(request, album_id)
    tracks = _tracks(request, album_id)
    return user, album_item(album_id, tracks[0].album or "", tracks), tracks


def _gain(request: Request, tracks: list[Item]) -> tuple[str, Gain]:
    """``?gain=``: each track's factor for its own files (``track``: its track gain; ``album``: the
    album gain, one factor when the tracks agree), so every part of the timeline plays at its tag."""
    mode = gain_mode(request)
    if mode is None:
        return "", 1.0
    catalog = app_state(request).catalog
    factors = [f for t in tracks for f in [gain_factor(catalog.track_tags(t.id), mode)] * len(t.files)]
    return "&" + urlencode({"gain": mode}), per_file(factors)


@cors
async def multivariant(request: Request) -> Response:
    user, album, tracks = _album(request)
    names = ladder_for(request, album)
    gain, _ = _gain(request, tracks)
    engine = engine_of(request)
    variants = await engine_call(asyncio.gather(*(engine.variant(album, PROFILES[n]) for n in names)))
    query = urlencode({"t": stream_token_for(request, user, album.id)}) + gain
    return playlist_response(request, multivariant_playlist(variants, query))


@cors
async def media(request: Request) -> Response:
    user, album, tracks = _album(request)
    gain, _ = _gain(request, tracks)
    rendition = await engine_call(engine_of(request).rendition(album, profile_for(request, album)))
    query = urlencode({"t": stream_token_for(request, user, album.id), "v": media_version(album)}) + gain
    return playlist_response(request, media_playlist(rendition.plan, query, track_ranges(tracks)))


def track_ranges(tracks: list[Item]) -> list[DateRange]:
    """Each track as an EXT-X-DATERANGE of class ``com.revenge.track``, with its item id and title."""
    return [DateRange(f"track-{n}", TRACK_CLASS, s.start_ms, s.end_ms, (("X-ITEM-ID", s.item_id),
                                                                          ("X-TITLE", s.title)))
            for n, s in enumerate(spans(tracks), 1)]


@cors
async def init(request: Request) -> Response:
    user, album, _ = _album(request)
    check_media_version(request, album)
    await keep_sessions_alive(request, user, album)  # playback activity of the caller's album session
    data = await engine_call(engine_of(request).init_segment(album, profile_for(request, album)))
    return Response(data, media_type=SEGMENT_TYPE, headers={"Cache-Control": SEGMENT_CACHE})


@cors
async def segment(request: Request) -> Response:
    user, album, tracks = _album(request)
    check_media_version(request, album)
    await keep_sessions_alive(request, user, album)
    profile = profile_for(request, album)
    index = segment_index(request)
    _, factor = _gain(request, tracks)
    return await segment_response(request, album, profile, factor, index)


async def timeline(request: Request) -> Response:
    """The album timeline's tracks (its chapters): where each starts and ends, in seconds."""
    require_user(request)
    album_id = _album_id(request)
    tracks = _tracks(request, album_id)
    track_spans = spans(tracks)
    return JSONResponse({
        "album_id": album_id,
        "duration_seconds": track_spans[-1].end_ms / 1000.0,
        "tracks": [{"item_id": s.item_id, "title": s.title, "start_seconds": s.start_ms / 1000.0,
                    "end_seconds": s.end_ms / 1000.0} for s in track_spans],
    })


async def put_progress(request: Request) -> Response:
    """A progress update on the album timeline (the body of ``PUT /api/v1/playback/progress/{item_id}``),
    recorded on the track playing at that position, at its offset within the track."""
    user = require_user(request)
    tracks = _tracks(request, _album_id(request))
    received = now_ms()
    body = json_object(await read_json(request, MAX_BODY_BYTES), "body")
    position = non_negative_field(body, "position_seconds", required=True)
    assert position is not None
    track_id, offset_ms = locate(spans(tracks), round(min(position, 1e12) * 1000))
    track = next(t for t in tracks if t.id == track_id)
    # The album's duration is not the track's: the catalog's track duration is used, as always.
    fields = {k: v for k, v in body.items() if k != "duration_seconds"}
    update = update_from_body({**fields, "position_seconds": offset_ms / 1000.0}, track, user, received)
    service = app_state(request).progress
    progress = await service.update(update)
    return JSONResponse({"item_id": track.id, "offset_seconds": offset_ms / 1000.0,
                         "progress": progress_json(progress, track, user.id, service.policy(track.type),
                                                   with_devices=False)})


_PREFIX = "/api/v1/albums/{album_id}"
_METHODS = ["GET", "HEAD", "OPTIONS"]
routes = [
    Route(f"{_PREFIX}/{{profile}}/segment{{index}}.m4s", segment, methods=_METHODS),
    Route(f"{_PREFIX}/playlist.m3u8", multivariant, methods=_METHODS),
    Route(f"{_PREFIX}/{{profile}}/index.m3u8", media, methods=_METHODS),
    Route(f"{_PREFIX}/{{profile}}/init.mp4", init, methods=_METHODS),
    Route(f"{_PREFIX}/timeline", timeline, methods=["GET"]),
    Route(f"{_PREFIX}/progress", put_progress, methods=["PUT"]),
]
