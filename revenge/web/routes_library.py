"""Music library routes: albums, artists and genres to browse, one album with its discs and tracks
(and the caller's progress), one artist with their albums, and search across all three.

The per-user album sorts (``recently_played``, ``frequent``) rank the albums of the caller's
``browse.PLAYED_TRACKS`` most recently or most played tracks, which the progress store lists from an
index: their cost is bounded by that, not by the size of the library.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library import browse
from revenge.library.cursors import CursorError
from revenge.library.model import is_valid_item_id
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import bad_request, not_found
from revenge.web.library_json import album_json, art_of, artist_json, discs_json, genre_json, track_json
from revenge.web.responses import JSONResponse
from revenge.web.routes_progress import caller_progress
from revenge.web.validate import int_param, limit_param

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 100
MAX_TEXT_CHARS = 200
MAX_YEAR = 9999


def _text_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > MAX_TEXT_CHARS:
        raise bad_request(name, f"{name} must be at most {MAX_TEXT_CHARS} characters")
    return value.strip()


def _path_id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not is_valid_item_id(value):
        raise bad_request(name, f"{name} must be 16 characters a-z, 2-7")
    return value


def _sort(raw: str | None) -> browse.AlbumSort | browse.PlayedSort:
    if raw is None or raw == "":
        return "alphabetical"
    for sort in browse.ALBUM_SORTS:
        if raw == sort:
            return sort
    raise bad_request("sort", f"sort must be one of {', '.join(browse.ALBUM_SORTS)}")


def _bad_cursor() -> Exception:
    return bad_request("cursor", "cursor is not one this server handed out")


async def list_albums(request: Request) -> Response:
    user = require_user(request)
    params = request.query_params
    sort = _sort(params.get("sort"))
    year_from = int_param(params.get("year_from"), 0, MAX_YEAR, "year_from")
    year_to = int_param(params.get("year_to"), 0, MAX_YEAR, "year_to")
    limit = limit_param(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    genre, cursor = _text_param(request, "genre"), params.get("cursor") or None
    state = app_state(request)
    try:
        if sort == "recently_played" or sort == "frequent":
            played = await state.progress.played(user.id, "track", "recent" if sort == "recently_played"
                                                 else "frequent", browse.PLAYED_TRACKS)
            albums, next_cursor = browse.list_played_albums(
                state.catalog, [(p.item_id, p.last_played_at, p.play_count) for p in played], sort=sort,
                genre=genre, year_from=year_from, year_to=year_to, cursor=cursor, limit=limit)
        else:
            albums, next_cursor = browse.list_albums(state.catalog, sort=sort, genre=genre,
                                                     year_from=year_from, year_to=year_to, cursor=cursor,
                                                     limit=limit)
    except CursorError:
        raise _bad_cursor() from None
    art = art_of(app_state(request).art, albums)
    return JSONResponse({"albums": [album_json(a, art) for a in albums], "next_cursor": next_cursor})


async def get_album(request: Request) -> Response:
    user = require_user(request)
    found = browse.get_album(app_state(request).catalog, _path_id(request, "album_id"))
    if found is None:
        raise not_found("album", "album_id")
    album, tracks = found
    progress = await asyncio.gather(*(caller_progress(request, user, t.item) for t in tracks))
    art = art_of(app_state(request).art, [album], tracks)
    body = album_json(album, art)
    body["discs"] = discs_json(tracks, list(progress), art)
    return JSONResponse(body)


async def list_artists(request: Request) -> Response:
    require_user(request)
    limit = limit_param(request.query_params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    try:
        artists, next_cursor = browse.list_artists(app_state(request).catalog,
                                                   cursor=request.query_params.get("cursor") or None,
                                                   limit=limit)
    except CursorError:
        raise _bad_cursor() from None
    art = art_of(app_state(request).art, artists)
    return JSONResponse({"artists": [artist_json(a, art) for a in artists], "next_cursor": next_cursor})


async def get_artist(request: Request) -> Response:
    require_user(request)
    found = browse.get_artist(app_state(request).catalog, _path_id(request, "artist_id"))
    if found is None:
        raise not_found("artist", "artist_id")
    artist, albums, appears_on = found
    art = art_of(app_state(request).art, [artist, *albums, *appears_on])
    body = artist_json(artist, art)
    body["albums"] = [album_json(a, art) for a in albums]
    body["appears_on"] = [album_json(a, art) for a in appears_on]
    return JSONResponse(body)


async def list_genres(request: Request) -> Response:
    require_user(request)
    limit = limit_param(request.query_params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    try:
        genres, next_cursor = browse.list_genres(app_state(request).catalog,
                                                 cursor=request.query_params.get("cursor") or None,
                                                 limit=limit)
    except CursorError:
        raise _bad_cursor() from None
    return JSONResponse({"genres": [genre_json(g) for g in genres], "next_cursor": next_cursor})


async def search(request: Request) -> Response:
    require_user(request)
    limit = limit_param(request.query_params.get("limit"), SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT)
    q = request.query_params.get("q")
    if not q:
        raise bad_request("q", "q is required")
    if len(q) > MAX_TEXT_CHARS:
        raise bad_request("q", f"q must be at most {MAX_TEXT_CHARS} characters")
    result = browse.search(app_state(request).catalog, q, limit)
    art = art_of(app_state(request).art, [*result.artists, *result.albums], result.tracks)
    return JSONResponse({"artists": [artist_json(a, art) for a in result.artists],
                         "albums": [album_json(a, art) for a in result.albums],
                         "tracks": [track_json(t, art) for t in result.tracks]})


routes = [
    Route("/api/v1/albums", list_albums, methods=["GET"]),
    Route("/api/v1/albums/{album_id}", get_album, methods=["GET"]),
    Route("/api/v1/artists", list_artists, methods=["GET"]),
    Route("/api/v1/artists/{artist_id}", get_artist, methods=["GET"]),
    Route("/api/v1/genres", list_genres, methods=["GET"]),
    Route("/api/v1/search", search, methods=["GET"]),
]
