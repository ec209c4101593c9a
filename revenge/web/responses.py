"""orjson-encoded JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Send

_JSON = b"application/json"


def json_bytes(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


async def send_json(send: Send, content: Any, status: int = 200) -> None:
    """What ``JSONResponse(content, status)`` sends, for plain ASGI endpoints: the same two messages
    without a ``Response`` object (and its header list built from a dict) in between."""
    body = json_bytes(content)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": body})
