"""``GET|HEAD /api/v1/stream/{item_id}/direct``: the original file, with conditional and range requests.

The file path comes from the catalog, never from the request: the only user input is the item id,
checked against its format before the lookup. The file is streamed in chunks read with ``pread`` in
a worker thread (uvicorn offers no sendfile), and the stream stops when the client goes away.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from revenge.errors import raise_if_out_of_descriptors
from revenge.library.media_types import media_type_for
from revenge.library.model import Item
from revenge.web.auth import require_stream_user
from revenge.web.errors import ApiError
from revenge.web.http_range import Plan, http_date, plan_response
from revenge.web.item_lookup import get_current_item_or_404

log = logging.getLogger("revenge.web")


class FileSliceResponse(Response):
    """Sends bytes [start, stop) of an open file descriptor, which it owns and closes."""

    chunk_size = 256 * 1024

    def __init__(self, fd: int, plan: Plan, headers: dict[str, str], media_type: str) -> None:
        self.fd = fd
        self.start = plan.start
        self.stop = plan.stop
        self.status_code = plan.status
        self.media_type = media_type
        self.background = None
        self.init_headers({**headers, "content-length": str(plan.length)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            if scope["method"] == "HEAD" or self.stop == self.start:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with anyio.create_task_group() as group:

                async def stop_on_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(stop_on_disconnect)
                await self._send_body(send)
                group.cancel_scope.cancel()
        finally:
            os.close(self.fd)

    async def _send_body(self, send: Send) -> None:
        offset = self.start
        while offset < self.stop:
            want = min(self.chunk_size, self.stop - offset)
            chunk = await anyio.to_thread.run_sync(os.pread, self.fd, want, offset)
            if not chunk:
                # Truncated since the headers went out: the client sees a short body and must retry.
                raise RuntimeError("file shrank while it was being sent")
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": offset < self.stop})


def _open(path: str) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


async def direct(request: Request) -> Response:
    # The token names the item of the path: a URL signed for one item never opens another.
    require_stream_user(request, str(request.path_params["item_id"]))
    return await serve_original(request, await get_current_item_or_404(request))


async def serve_original(request: Request, item: Item) -> Response:
    """The item's one file for this request (its Range and conditional headers); also the Subsonic
    face's ``stream``/``download``."""
    if len(item.files) != 1:
        raise ApiError(409, "multi_file_item",
                       f"this item is made of {len(item.files)} files and has no single original: "
                       f"play it with HLS (/api/v1/stream/{item.id}/playlist.m3u8)", "item_id")
    media = item.files[0]
    try:
        fd, st = await anyio.to_thread.run_sync(_open, media.path)
    except OSError as exc:
        raise_if_out_of_descriptors(exc)  # a 503 by the exception handlers, not a missing file
        raise ApiError(404, "file_missing", "the item's file is gone; the next library scan will drop it",
                       "item_id") from None
    # The descriptor is closed here on every way out but a FileSliceResponse (which then owns it): a 304,
    # a 416, or any exception while planning. No request may leave a file open.
    try:
        response = _answer(request, fd, st, media_type_for(media.path, media.container))
    except BaseException:
        os.close(fd)
        raise
    if not isinstance(response, FileSliceResponse):
        os.close(fd)
    return response


def _answer(request: Request, fd: int, st: os.stat_result, media_type: str) -> Response:
    """The answer for an open file; ``fd`` is the caller's to close unless this is a FileSliceResponse."""
    etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
    headers = request.headers
    plan = plan_response(
        size=st.st_size, etag=etag, last_modified=int(st.st_mtime),
        range_header=headers.get("range"), if_range=headers.get("if-range"),
        if_none_match=headers.get("if-none-match"), if_modified_since=headers.get("if-modified-since"),
    )
    common: dict[str, Any] = {
        "accept-ranges": "bytes",
        "etag": etag,
        "last-modified": http_date(st.st_mtime),
        "cache-control": "private, no-cache",
    }
    if plan.status == 304:
        return Response(status_code=304, headers=common)
    if plan.status == 416:
        raise ApiError(416, "range_not_satisfiable", f"the file has {st.st_size} bytes", "Range",
                       {**common, "content-range": f"bytes */{st.st_size}"})
    if plan.status == 206:
        common["content-range"] = f"bytes {plan.start}-{plan.stop - 1}/{st.st_size}"
    return FileSliceResponse(fd, plan, common, media_type)


routes = [Route("/api/v1/stream/{item_id}/direct", direct, methods=["GET", "HEAD"])]
