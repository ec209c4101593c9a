"""Conditional and range requests for a file (RFC 9110 §13, §14): which answer to give. Pure.

Starlette's FileResponse parses ranges too, but answers a malformed or reversed range with 400
(RFC 9110 says: ignore it and send the whole file), has no If-None-Match / If-Modified-Since, and
its errors are plain text. So the decision is made here and the route only sends bytes.

Multiple ranges in one request are ignored (the whole file is sent), which RFC 9110 §14.2 allows;
players ask for one range at a time. Nothing here raises, whatever the client sends: every header
string maps to an answer (a number too long for ``int()`` is simply larger than any file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import Literal

_RANGE_SPEC_RE = re.compile(r"([0-9]*)-([0-9]*)")  # ASCII digits only: \d would accept "٣"
# A position with more digits than this lies past the end of any file; int() is not asked to convert
# it (it refuses more than 4300 digits, and converting is quadratic in the length below that).
_MAX_DIGITS = 18
_BEYOND_ANY_FILE = 10**_MAX_DIGITS
_ENTITY_TAG_RE = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """The range starts past the end of the file: 416 with ``Content-Range: bytes */size``."""


UNSATISFIABLE = Unsatisfiable()


def parse_range(header: str, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """One byte range as (start, stop) with stop exclusive, clamped to the file; UNSATISFIABLE when
    it lies outside the file; None when the header is to be ignored (other unit, malformed, reversed,
    several ranges), meaning: send the whole file."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE_SPEC_RE.fullmatch(spec.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = _position(last)  # bytes=-n: the last n bytes
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size
    start = _position(first)
    end = _position(last) if last else None
    if end is not None and end < start:
        return None  # an invalid range-spec: ignored
    if start >= size:
        return UNSATISFIABLE
    stop = min(end + 1, size) if end is not None else size
    return start, stop


def _position(digits: str) -> int:
    """A byte position from ASCII digits; any position too long to matter is the same huge number
    (two such positions compare equal, so ``bytes=<huge>-<huger>`` is unsatisfiable, not reversed)."""
    stripped = digits.lstrip("0")
    return _BEYOND_ANY_FILE if len(stripped) > _MAX_DIGITS else int(stripped or "0")


def entity_tags(header: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque tag) for each entity tag in an If-None-Match / If-Match list; None if malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    text = header.strip()
    while position < len(text):
        match = _ENTITY_TAG_RE.match(text, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


def http_date(epoch_seconds: float) -> str:
    return formatdate(int(epoch_seconds), usegmt=True)


def parse_http_date(value: str) -> int | None:
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year like 99999999999
        return None
    if parsed.tzinfo is None:
        return None  # HTTP dates are always GMT; a zone-less date is not one
    return int(parsed.timestamp())


@dataclass(frozen=True, slots=True)
class Plan:
    status: Literal[200, 206, 304, 416]
    start: int = 0
    stop: int = 0  # exclusive

    @property
    def length(self) -> int:
        return self.stop - self.start


def plan_response(*, size: int, etag: str, last_modified: int, range_header: str | None = None,
                  if_range: str | None = None, if_none_match: str | None = None,
                  if_modified_since: str | None = None) -> Plan:
    """What to answer a GET or HEAD of a file of ``size`` bytes whose strong validator is ``etag``
    (quoted) and whose modification time is ``last_modified`` (whole seconds)."""
    if if_none_match is not None:
        tags = entity_tags(if_none_match)
        # Weak comparison (§13.1.2): W/"x" matches "x".
        if if_none_match.strip() == "*" or (tags is not None and any(t == etag for _, t in tags)):
            return Plan(304)
    elif if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        if since is not None and last_modified <= since:
            return Plan(304)
    whole = Plan(200, 0, size)
    if range_header is None:
        return whole
    if if_range is not None and not _if_range_holds(if_range, etag, last_modified):
        return whole
    parsed = parse_range(range_header, size)
    if parsed is None:
        return whole
    if isinstance(parsed, Unsatisfiable):
        return Plan(416)
    return Plan(206, parsed[0], parsed[1])


def _if_range_holds(if_range: str, etag: str, last_modified: int) -> bool:
    """If-Range (§13.1.5): the range applies only if the validator still matches exactly — a strong
    entity tag comparison, or the exact Last-Modified date; anything else means the whole file."""
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches strongly
    date = parse_http_date(value)
    return date is not None and date == last_modified
