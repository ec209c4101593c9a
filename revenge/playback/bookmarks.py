"""Bookmarks: a user's marked positions in an item, each with a note. Plain dataclasses and pure rules.

Ids are 96 random bits in URL-safe base64 (16 characters), so they cannot be guessed or enumerated; a
bookmark is only ever found under its owner's (user, item), so another user's id simply does not exist
for the caller (404). Positions are ms, clamped to the item's duration.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

MAX_NOTE_CHARS = 1000
# Per (user, item): a bound on what one client can make the store hold.
MAX_BOOKMARKS_PER_ITEM = 500
BOOKMARK_ID_RE = re.compile(r"[A-Za-z0-9_-]{16}")


def new_bookmark_id() -> str:
    return secrets.token_urlsafe(12)


def is_valid_bookmark_id(value: str) -> bool:
    return bool(BOOKMARK_ID_RE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Bookmark:
    user_id: str
    item_id: str
    id: str
    position_ms: int
    note: str
    created_at: int  # server time, ms since the Unix epoch

    def encode(self) -> bytes:
        """The value stored under the bookmark's id (Redis hash field): position, note, creation time."""
        return orjson.dumps({"p": self.position_ms, "n": self.note, "c": self.created_at})

    @classmethod
    def decode(cls, user_id: str, item_id: str, bookmark_id: str, value: bytes | str) -> Bookmark:
        data = orjson.loads(value)
        return cls(user_id, item_id, bookmark_id, int(data["p"]), str(data["n"]), int(data["c"]))


class BookmarkRejected(ValueError):
    """Bad bookmark input; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def position_ms(position_seconds: float, duration_ms: int) -> int:
    """The stored position: finite and not negative (else ``BookmarkRejected``), clamped to the item."""
    if not math.isfinite(position_seconds):
        raise BookmarkRejected("position_seconds", "position_seconds must be finite")
    if position_seconds < 0:
        raise BookmarkRejected("position_seconds", "position_seconds must not be negative")
    return max(0, min(round(min(position_seconds, 1e15) * 1000), duration_ms))


def check_note(note: str) -> str:
    if len(note) > MAX_NOTE_CHARS:
        raise BookmarkRejected("note", f"note must be at most {MAX_NOTE_CHARS} characters")
    if "\x00" in note:
        raise BookmarkRejected("note", "note must not contain NUL characters")
    return note


def order_key(bookmark: Bookmark) -> tuple[int, int, str]:
    return (bookmark.position_ms, bookmark.created_at, bookmark.id)


def ordered(bookmarks: Iterable[Bookmark]) -> list[Bookmark]:
    """By position, then creation time, then id: the listing order, the same in every store."""
    return sorted(bookmarks, key=order_key)
