"""Podcast subscriptions over the API: admins subscribe, change, refresh, download and unsubscribe;
every user lists shows and episodes (a downloaded episode's ``item_id`` plays like any item)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.podcasts.downloads import PodcastError
from revenge.podcasts.feeds import FeedError
from revenge.podcasts.naming import ID_RE
from revenge.podcasts.service import PodcastService
from revenge.web.auth import require_admin, require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, not_found
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import int_field, json_object, string_field

MAX_OPML_BYTES = 1024 * 1024
_STATUS = {
    "unsafe_url": 400,
    "feed_unusable": 422,
    "feed_unreachable": 502,
    "exists": 409,
    "no_podcast_folder": 409,
    "not_found": 404,
}


def _service(request: Request) -> PodcastService:
    return app_state(request).podcasts


def _id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not ID_RE.fullmatch(value):
        raise not_found("podcast" if name == "podcast_id" else "episode", name)
    return value


def _error(exc: PodcastError, field: str | None) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc), field)


def podcast_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "feed_url": row["feed_url"],
        "title": row["title"],
        "description": row["description"],
        "image": row["image"],
        "link": row["link"],
        "auto_download": bool(row["auto_download"]),
        "auto_download_off_reason": row["auto_download_off_reason"],
        "new_per_check": row["new_per_check"],
        "keep_last": row["keep_last"],
        "check_interval_seconds": row["check_interval_seconds"],
        "failures": row["failures"],
        "last_error": row["last_error"],
        "last_checked_at": row["last_checked_at"],
        "next_check_at": row["next_check_at"],
    }


def episode_json(row: dict[str, Any], progress: tuple[int, int | None] | None) -> dict[str, Any]:
    done, total = progress if progress else (None, None)
    return {
        "id": row["id"],
        "podcast_id": row["podcast_id"],
        "guid": row["guid"],
        "title": row["title"],
        "description": row["description"],
        "published": row["published"],
        "duration_seconds": row["duration_seconds"],
        "enclosure": {
            "url": row["enclosure_url"],
            "type": row["enclosure_type"],
            "length": row["enclosure_length"],
        },
        "season": row["season"],
        "episode": row["episode"],
        "image": row["image"],
        "chapters": orjson.loads(row["chapters"]),
        "chapters_url": row["chapters_url"],
        "download": {
            "state": row["download"],
            "error": row["error"],
            "bytes_done": done,
            "bytes_total": total,
            "downloaded_at": row["downloaded_at"],
        },
        "item_id": row["item_id"] if row["download"] == "downloaded" else None,
    }


def _options(body: Any) -> dict[str, Any]:
    """The per-feed settings in ``body`` (only those present)."""
    out: dict[str, Any] = {}
    if "auto_download" in body:
        if not isinstance(body["auto_download"], bool):
            raise bad_request("auto_download", "auto_download must be true or false")
        out["auto_download"] = int(body["auto_download"])
    for name, top in (("new_per_check", 100), ("keep_last", 10_000)):
        if name in body:
            value = int_field(body, name)
            if value is None or value > top:
                raise bad_request(name, f"{name} must be an integer 0..{top}")
            out[name] = value
    if "check_interval_seconds" in body:
        value = body["check_interval_seconds"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 60 <= value <= 604_800:
            raise bad_request("check_interval_seconds", "check_interval_seconds must be a number 60..604800")
        out["check_interval_seconds"] = float(value)
    return out


async def list_podcasts(request: Request) -> Response:
    require_user(request)
    return JSONResponse({"podcasts": [podcast_json(row) for row in await _service(request).all()]})


async def subscribe(request: Request) -> Response:
    require_admin(request)
    body = json_object(await read_json(request))
    feed_url = string_field(body, "feed_url")
    if len(feed_url) > 2000:
        raise bad_request("feed_url", "feed_url is longer than 2000 characters")
    options = _options(body)
    try:
        row = await _service(request).subscribe(feed_url, options)
    except PodcastError as exc:
        raise _error(exc, "feed_url") from None
    return JSONResponse(podcast_json(row), status_code=201)


async def get_podcast(request: Request) -> Response:
    require_user(request)
    row = await _service(request).get(_id(request, "podcast_id"))
    if row is None:
        raise not_found("podcast", "podcast_id")
    return JSONResponse(podcast_json(row))


async def patch_podcast(request: Request) -> Response:
    require_admin(request)
    pid = _id(request, "podcast_id")
    options = _options(json_object(await read_json(request)))
    row = await _service(request).update(pid, options)
    if row is None:
        raise not_found("podcast", "podcast_id")
    return JSONResponse(podcast_json(row))


async def delete_podcast(request: Request) -> Response:
    require_admin(request)
    if not await _service(request).unsubscribe(_id(request, "podcast_id")):
        raise not_found("podcast", "podcast_id")
    return Response(status_code=204)


async def refresh(request: Request) -> Response:
    require_admin(request)
    try:
        result = await _service(request).refresh(_id(request, "podcast_id"))
    except PodcastError as exc:
        raise _error(exc, "podcast_id") from None
    return JSONResponse(result)


async def list_episodes(request: Request) -> Response:
    require_user(request)
    service = _service(request)
    pid = _id(request, "podcast_id")
    if await service.get(pid) is None:
        raise not_found("podcast", "podcast_id")
    rows = await service.episodes(pid)
    progress = service.downloads.progress
    return JSONResponse({"episodes": [episode_json(row, progress.get(row["id"])) for row in rows]})


async def start_download(request: Request) -> Response:
    require_admin(request)
    service = _service(request)
    eid = _id(request, "episode_id")
    try:
        await service.downloads.download(eid)
    except PodcastError as exc:
        raise _error(exc, "episode_id") from None
    row = await service.episode(eid)
    if row is None:
        raise not_found("episode", "episode_id")
    return JSONResponse(episode_json(row, service.downloads.progress.get(eid)), status_code=202)


async def remove_download(request: Request) -> Response:
    require_admin(request)
    service = _service(request)
    eid = _id(request, "episode_id")
    if await service.episode(eid) is None:
        raise not_found("episode", "episode_id")
    await service.downloads.remove_download(eid)
    return Response(status_code=204)


async def export_opml(request: Request) -> Response:
    require_user(request)
    return Response(
        await _service(request).export_opml(),
        media_type="text/x-opml",
        headers={"Content-Disposition": 'attachment; filename="podcasts.opml"'},
    )


async def import_opml(request: Request) -> Response:
    require_admin(request)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_OPML_BYTES:
            raise ApiError(413, "too_large", f"request body over {MAX_OPML_BYTES} bytes", "body")
        chunks.append(chunk)
    try:
        results = await _service(request).import_opml(b"".join(chunks))
    except FeedError as exc:
        raise bad_request("body", str(exc)) from None
    return JSONResponse({"results": results})


routes = [
    Route("/api/v1/podcasts", list_podcasts, methods=["GET"]),
    Route("/api/v1/podcasts", subscribe, methods=["POST"]),
    Route("/api/v1/podcasts:opml", export_opml, methods=["GET"]),
    Route("/api/v1/podcasts:opml", import_opml, methods=["POST"]),
    Route("/api/v1/podcasts/episodes/{episode_id}/download", start_download, methods=["POST"]),
    Route("/api/v1/podcasts/episodes/{episode_id}/download", remove_download, methods=["DELETE"]),
    Route("/api/v1/podcasts/{podcast_id}", get_podcast, methods=["GET"]),
    Route("/api/v1/podcasts/{podcast_id}", patch_podcast, methods=["PATCH"]),
    Route("/api/v1/podcasts/{podcast_id}", delete_podcast, methods=["DELETE"]),
    Route("/api/v1/podcasts/{podcast_id}/refresh", refresh, methods=["POST"]),
    Route("/api/v1/podcasts/{podcast_id}/episodes", list_episodes, methods=["GET"]),
]
