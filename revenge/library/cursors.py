"""Opaque list cursors: the key values of a page's last row, as URL-safe base64 JSON, checked on the way
back in (a cursor is client input)."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

import orjson

from revenge.library.model import is_valid_item_id


class CursorError(ValueError):
    """A list cursor that this catalog did not hand out."""


def cursor_text(values: Sequence[Any]) -> str:
    """An opaque list cursor: the JSON of ``values`` in URL-safe base64."""
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode("ascii").rstrip("=")


def cursor_values(cursor: str) -> Any:
    """What ``cursor_text`` encoded (the caller checks its shape); CursorError when it is not base64 JSON."""
    if len(cursor) > 4096 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise CursorError("malformed cursor")
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise CursorError("malformed cursor") from None


def encode_cursor(key: str, item_id: str) -> str:
    return cursor_text([key, item_id])


def decode_cursor(cursor: str) -> tuple[str, str]:
    value = cursor_values(cursor)
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value)
            or not is_valid_item_id(value[1])):
        raise CursorError("malformed cursor")
    return value[0], value[1]
