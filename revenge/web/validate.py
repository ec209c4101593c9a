"""The validators of request input, one copy each: JSON fields, device ids, limits, playback rates.
Each answers the value or raises a 400 ``ApiError`` naming the field (``prefix`` puts an entry of a list
in front: ``updates[3].position_seconds``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from revenge.progress import rules as progress_rules
from revenge.progress.model import is_device_id
from revenge.web.errors import bad_request

_NUMBER = (int, float)  # a tuple: ``int | float`` would build a union object on every call
DEFAULT_DEVICE_ID = "unknown"  # clients of the seed's shape send no device id
DEVICE_ID_MESSAGE = "device_id must be 1-64 characters of letters, digits, . _ : @ -"


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


JSON_INT_MAX = 2**53  # indices, versions, seeds: integers every JSON client represents exactly


def int_field(body: Mapping[str, Any], name: str, prefix: str = "", required: bool = True) -> int | None:
    """A JSON integer 0..2^53-1 (JSON Schema's "integer": a number without a fraction, so 3.0 is one);
    ``None`` when absent and not required."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(prefix + name, f"{name} is required")
        return None
    whole = value.__class__ is int or (value.__class__ is float and value.is_integer())
    if not whole or not 0 <= value < JSON_INT_MAX:
        raise bad_request(prefix + name, f"{name} must be an integer 0..{JSON_INT_MAX - 1}")
    return int(value)


def non_negative_field(body: Mapping[str, Any], name: str, required: bool, prefix: str = "") -> float | None:
    """``number_field`` that also refuses a negative number."""
    value = number_field(body, name, required, prefix)
    if value is not None and value < 0:
        raise bad_request(prefix + name, f"{name} must not be negative")
    return value


def playback_rate_field(body: Mapping[str, Any], prefix: str = "") -> float:
    """``playback_rate``: a number in the range the progress rules accept; 1.0 when absent."""
    rate = number_field(body, "playback_rate", required=False, prefix=prefix)
    if rate is None:
        return 1.0
    if not progress_rules.is_valid_playback_rate(rate):
        raise bad_request(prefix + "playback_rate", progress_rules.PLAYBACK_RATE_MESSAGE)
    return rate


def device_id_value(value: Any, field: str = "device_id", required_message: str | None = None) -> str:
    """A device id (``[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}``, nothing after it, not even a newline).
    Absent: ``DEFAULT_DEVICE_ID``, or a 400 with ``required_message`` when one is given."""
    if value is None:
        if required_message is not None:
            raise bad_request(field, required_message)
        return DEFAULT_DEVICE_ID
    if not isinstance(value, str) or not is_device_id(value):
        raise bad_request(field, DEVICE_ID_MESSAGE)
    return value


def int_param(raw: str | None, minimum: int, maximum: int, field: str) -> int | None:
    """A query parameter integer ``minimum``..``maximum``; None when absent or empty. ASCII digits only
    (``str.isdigit()`` is true for "²", which ``int()`` refuses) and few of them (``int()`` refuses more
    than 4300)."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not minimum <= int(raw) <= maximum:
        raise bad_request(field, f"{field} must be an integer {minimum}..{maximum}")
    return int(raw)


def limit_param(raw: str | None, default: int, maximum: int, field: str = "limit") -> int:
    """A query parameter count 1..``maximum``; ``default`` when absent or empty."""
    value = int_param(raw, 1, maximum, field)
    return default if value is None else value
