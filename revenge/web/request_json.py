"""Reading a JSON request body with a size bound (the fields in it are checked by ``validate``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from revenge.web.conn import Conn, header_value
from revenge.web.errors import ApiError, bad_request

DEFAULT_MAX_BODY_BYTES = 64 * 1024


async def read_json(request: Request, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """The parsed body; 413 past ``max_bytes`` (checked while reading, not only from Content-Length),
    400 (field ``body``) when it is not JSON."""
    return await receive_json(request, request.receive, max_bytes)


async def receive_json(conn: Conn, receive: Receive, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """``read_json`` for plain ASGI endpoints: the body straight from the ``receive`` channel."""
    declared = header_value(conn, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"request body over {max_bytes} bytes", "body")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "too_large", f"request body over {max_bytes} bytes", "body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return orjson.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    except orjson.JSONDecodeError:
        raise bad_request("body", "request body is not valid JSON") from None
