"""A user's playlists: the model, the rules of a change (pure) and the store contract. Both stores keep
them per user (tests/integration/test_playlists_contract.py); the factory is ``playlists_store``. A
playlist its owner made ``public`` is also readable by every other user (``public``, ``get_public``);
only its owner changes it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

MAX_PLAYLISTS = 1000  # per user
MAX_ENTRIES = 10_000  # per playlist
MAX_NAME = 200
MAX_PUBLIC = 1000  # other users' public playlists one listing reads


class PlaylistError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Playlist:
    id: str
    name: str
    items: tuple[str, ...] = ()
    comment: str = ""
    public: bool = False
    created_ms: int = 0
    changed_ms: int = 0


def new_playlist_id() -> str:
    return "pl-" + secrets.token_hex(8)


def encode(playlist: Playlist) -> bytes:
    return orjson.dumps({"id": playlist.id, "name": playlist.name, "items": playlist.items,
                         "comment": playlist.comment, "public": playlist.public,
                         "created_ms": playlist.created_ms, "changed_ms": playlist.changed_ms})


def decode(data: bytes | str) -> Playlist:
    raw: dict[str, Any] = orjson.loads(data)
    return Playlist(raw["id"], raw["name"], tuple(raw["items"]), raw["comment"], raw["public"],
                    raw["created_ms"], raw["changed_ms"])


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise PlaylistError(f"a playlist name is 1..{MAX_NAME} characters")
    return name


def create(name: str, items: Sequence[str], now_ms: int) -> Playlist:
    if len(items) > MAX_ENTRIES:
        raise PlaylistError(f"a playlist holds at most {MAX_ENTRIES} entries")
    return Playlist(new_playlist_id(), check_name(name), tuple(items), created_ms=now_ms, changed_ms=now_ms)


def update(playlist: Playlist, now_ms: int, *, name: str | None = None, comment: str | None = None,
           public: bool | None = None, add: Sequence[str] = (), remove: Sequence[int] = ()) -> Playlist:
    """The playlist after one change: entries at the ``remove`` indexes (of the playlist as it was) go,
    then ``add`` is appended. An index out of range is refused (nothing changes)."""
    if any(not 0 <= i < len(playlist.items) for i in remove):
        raise PlaylistError("songIndexToRemove is out of range")
    gone = set(remove)
    items = tuple(e for i, e in enumerate(playlist.items) if i not in gone) + tuple(add)
    if len(items) > MAX_ENTRIES:
        raise PlaylistError(f"a playlist holds at most {MAX_ENTRIES} entries")
    return replace(playlist, items=items, changed_ms=now_ms,
                   name=check_name(name) if name is not None else playlist.name,
                   comment=comment[:1000] if comment is not None else playlist.comment,
                   public=public if public is not None else playlist.public)


class PlaylistStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def add(self, user_id: str, playlist: Playlist) -> bool:
        """Store a new playlist; False past ``MAX_PLAYLISTS`` (nothing stored)."""
    async def get(self, user_id: str, playlist_id: str) -> Playlist | None: ...
    async def all(self, user_id: str) -> list[Playlist]:
        """The user's playlists by name."""
    async def put(self, user_id: str, playlist: Playlist) -> bool:
        """Replace a stored playlist; False when there is none of that id (nothing stored)."""
    async def delete(self, user_id: str, playlist_id: str) -> bool: ...
    async def public(self) -> list[tuple[str, Playlist]]:
        """Every user's public playlists, each with its owner's user id, by name (at most
        ``MAX_PUBLIC``)."""
    async def get_public(self, playlist_id: str) -> tuple[str, Playlist] | None:
        """The playlist of that id and its owner's user id if it is public (None otherwise)."""


def by_name(playlists: list[Playlist]) -> list[Playlist]:
    return sorted(playlists, key=lambda p: (p.name.casefold(), p.id))


def owned_by_name(found: list[tuple[str, Playlist]]) -> list[tuple[str, Playlist]]:
    return sorted(found, key=lambda o: (o[1].name.casefold(), o[1].id))
