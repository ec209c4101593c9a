"""Stars and ratings a user puts on songs, albums and artists (Subsonic's ``star``, ``setRating``): the
contract and its rules (the factory: ``marks_store``). Keys are the ids the face hands out (an item
id, ``al-…``, ``ar-…``), checked by the caller. Both stores keep the same rules (tests/integration/
test_marks_contract.py): starring again keeps the first time, a rating is 1..5 and 0 removes it, a user
holds at most ``MAX_MARKS`` of each (further stars are refused, not evicting older ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

MAX_MARKS = 20_000
MAX_LOOKUP = 500  # keys per query or HMGET: bounded work per round trip


@dataclass(frozen=True)
class Marks:
    """What one user put on some keys: star times (ms) and ratings (1..5), only the keys that have them."""

    starred: dict[str, int] = field(default_factory=dict)
    ratings: dict[str, int] = field(default_factory=dict)


class TooManyMarks(ValueError):
    pass


class MarkStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def star(self, user_id: str, keys: Sequence[str], at_ms: int) -> None:
        """Star ``keys`` (a key starred already keeps its time); ``TooManyMarks`` past the cap."""
    async def unstar(self, user_id: str, keys: Sequence[str]) -> None: ...
    async def starred(self, user_id: str) -> dict[str, int]:
        """Every starred key and when (ms since the epoch)."""
    async def set_rating(self, user_id: str, key: str, rating: int) -> None:
        """1..5; 0 removes the rating (``ValueError`` otherwise)."""
    async def ratings(self, user_id: str) -> dict[str, int]: ...
    async def marks_of(self, user_id: str, keys: Sequence[str]) -> Marks:
        """The stars and ratings of ``keys`` alone, in one batched read (a response's songs, albums,
        artists)."""


def read_whole(held: int, asked: int) -> bool:
    """Whether to read all ``held`` marks of a kind and keep the asked ones, rather than look up the
    ``asked`` keys one by one: whichever reads fewer (a user with a few stars, a page of 1 500 songs)."""
    return held <= asked


def check_rating(rating: int) -> None:
    if not 0 <= rating <= 5:
        raise ValueError("a rating is 1..5, or 0 to remove it")
