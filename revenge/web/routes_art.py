"""``GET /api/v1/art/{art_id}?size=N``: cover art, resized; ``GET /api/v1/items/{item_id}/lyrics``.

An art id names one picture's bytes, so its answers never change: a strong ETag of (id, size, format),
``immutable``, and a 304 for a client that has it. The path of the cached file is built from the
validated id, a size of the fixed set and a format of ours; nothing else of the request reaches it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.library.art import ART_SIZES, MEDIA_TYPES, ArtError, choose_format, is_art_id, parse_art_size
from revenge.library.art_cache import ArtMissing
from revenge.library.lyrics import Lyrics, find_lyrics
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, not_found
from revenge.web.http_range import entity_tags
from revenge.web.item_lookup import get_item_or_404
from revenge.web.responses import JSONResponse

log = logging.getLogger("revenge.art")

CACHE_CONTROL = "private, max-age=31536000, immutable"  # private: it takes an API key to fetch
_SIZES_TEXT = ", ".join(str(s) for s in ART_SIZES)


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None  # evicted between the lookup and the read


def _etag_matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = entity_tags(if_none_match)
    return tags is not None and any(tag == etag for _, tag in tags)  # weak comparison (RFC 9110 §13.1.2)


async def get_art(request: Request) -> Response:
    require_user(request)
    art_id = str(request.path_params["art_id"])
    if not is_art_id(art_id):
        raise bad_request("art_id", "art_id must be 24 characters a-z, 2-7")
    size = parse_art_size(request.query_params.get("size"))
    if size is None:
        raise bad_request("size", f"size must be one of {_SIZES_TEXT}")
    return await serve_art(request, art_id, size)


async def serve_art(request: Request, art_id: str, size: int) -> Response:
    """Picture ``art_id`` (checked by the caller) fitted into ``size`` (one of ART_SIZES), in the format
    the request accepts; also the Subsonic face's ``getCoverArt``."""
    fmt = choose_format(request.headers.get("accept"))
    state = app_state(request)
    cache = state.art_cache
    etag = f'"{art_id}-{size}-{fmt}"'
    headers = {"etag": etag, "cache-control": CACHE_CONTROL, "vary": "Accept"}
    path = cache.cached(art_id, size, fmt)
    known = path is not None or state.art.source(art_id) is not None
    if_none_match = request.headers.get("if-none-match")
    if known and if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    data = await anyio.to_thread.run_sync(_read, path) if path is not None else None
    if data is None:
        if path is not None:
            cache.forget(art_id, size, fmt)
        if not known:
            raise not_found("art", "art_id")
        try:
            data = await anyio.to_thread.run_sync(cache.make, art_id, size, fmt)
        except ArtMissing:
            raise not_found("art", "art_id") from None
        except ArtError as exc:
            log.warning("cover art %s cannot be decoded: %s", art_id, exc)
            raise ApiError(404, "art_unreadable", "this picture cannot be decoded", "art_id") from None
    return Response(data, media_type=MEDIA_TYPES[fmt], headers=headers)


def lyrics_json(item_id: str, lyrics: Lyrics) -> dict[str, object]:
    return {
        "item_id": item_id,
        "synced": lyrics.synced,
        "source": lyrics.source,
        "language": lyrics.language,
        "metadata": lyrics.metadata,
        "lines": [{"start_ms": line.start_ms, "text": line.text} for line in lyrics.lines],
    }


async def get_lyrics(request: Request) -> Response:
    """The lyrics of the item's (first) file: its ``.lrc`` sidecar or its tags, read now."""
    require_user(request)
    item = get_item_or_404(request)
    lyrics = await anyio.to_thread.run_sync(find_lyrics, Path(item.first.path))
    if lyrics is None:
        raise ApiError(404, "no_lyrics", "this item has no lyrics", "item_id")
    return JSONResponse(lyrics_json(item.id, lyrics))


routes = [
    Route("/api/v1/art/{art_id}", get_art, methods=["GET"]),
    Route("/api/v1/items/{item_id}/lyrics", get_lyrics, methods=["GET"]),
]
