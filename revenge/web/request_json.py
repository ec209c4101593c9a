"""Reading a JSON request body with a size bound, and typed fields out of it, with errors naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from revenge.web.errors import ApiError, bad_request

DEFAULT_MAX_BODY_BYTES = 64 * 1024
_NUMBER = (int, float)  # a tuple: ``int | float`` would build a union object on every call


async def read_json(request: Request, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """The parsed body; 413 past ``max_bytes`` (checked while reading, not only from Content-Length),
    400 (field ``body``) when it is not JSON."""
    return await receive_json(request.scope, request.receive, max_bytes)


async def receive_json(scope: Scope, receive: Receive, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """``read_json`` for plain ASGI endpoints: the body straight from the ``receive`` channel."""
    declared = header_value(scope, b"content-length")
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


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` (lower case) header of the request, decoded as Latin-1 like Starlette does."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def json_object(body: Any, field: str = "body") -> Mapping[str, Any]:
    """``body`` if it is a JSON object; 400 naming ``field`` (an entry of a list: ``updates[3]``) if not."""
    if not isinstance(body, dict):
        raise bad_request(field, "expected a JSON object")
    return body


def number_field(body: Mapping[str, Any], name: str, required: bool, prefix: str = "") -> float | None:
    """A finite JSON number (not a boolean, not a string); ``None`` when absent and not required.
    Errors name the field ``prefix + name`` (``updates[3].position_seconds`` in a batch)."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(prefix + name, f"{name} is required")
        return None
    if value.__class__ is bool or not isinstance(value, _NUMBER):
        raise bad_request(prefix + name, f"{name} must be a number")
    if not math.isfinite(value):
        raise bad_request(prefix + name, f"{name} must be finite")
    return float(value)


def string_field(body: Mapping[str, Any], name: str, default: str | None = None) -> str:
    """A JSON string; the default when absent (400 when there is none)."""
    value = body.get(name)
    if value is None:
        if default is None:
            raise bad_request(name, f"{name} is required")
        return default
    if not isinstance(value, str):
        raise bad_request(name, f"{name} must be a string")
    return value
