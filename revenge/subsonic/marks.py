"""``star``, ``unstar``, ``setRating``, ``getStarred``/``getStarred2``, and the album lists that come from
them (``starred``, ``highest``): onto the mark store (stars and ratings, both store backends)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from revenge.library import browse, paging
from revenge.playback.marks import Marks, TooManyMarks
from revenge.subsonic import mapping
from revenge.subsonic.envelope import GENERIC, SubsonicError, not_found
from revenge.subsonic.mapping import parse_id
from revenge.subsonic.protocol import Answer, Call, Handler

_KINDS = {"id": None, "albumId": "album", "artistId": "artist"}
MAX_PER_CALL = 500


def _keys(call: Call) -> list[str]:
    """The ids of a star/unstar call, each checked: ``id`` may name a song, album or artist."""
    keys: list[str] = []
    for name, kind in _KINDS.items():
        for value in call.all(name):
            parsed = parse_id(value)
            if parsed is None or (kind is not None and parsed[0] != kind):
                raise not_found("Item")
            keys.append(value)
    if not keys:
        call.require("id")
    if len(keys) > MAX_PER_CALL:
        raise SubsonicError(GENERIC, f"At most {MAX_PER_CALL} ids per call")
    return keys


def _exists(call: Call, key: str) -> bool:
    kind, library_id = parse_id(key)  # type: ignore[misc]
    catalog = call.state.catalog
    if kind == "track":
        return catalog.get_item(library_id) is not None
    if kind == "album":
        return browse.get_album(catalog, library_id) is not None
    return browse.get_artist(catalog, library_id) is not None


async def star(call: Call) -> dict[str, Any]:
    keys = _keys(call)
    missing = next((k for k in keys if not _exists(call, k)), None)
    if missing is not None:
        raise not_found("Item")
    try:
        await call.state.marks.star(call.user.id, keys, int(time.time() * 1000))
    except TooManyMarks as exc:
        raise SubsonicError(GENERIC, str(exc)) from None
    return {}


async def unstar(call: Call) -> dict[str, Any]:
    await call.state.marks.unstar(call.user.id, _keys(call))
    return {}


async def set_rating(call: Call) -> dict[str, Any]:
    key = call.require("id")
    rating = call.int("rating", -1, 0, 5)
    if call.get("rating") in (None, ""):
        call.require("rating")
    if parse_id(key) is None or not _exists(call, key):
        raise not_found("Item")
    try:
        await call.state.marks.set_rating(call.user.id, key, rating)
    except TooManyMarks as exc:
        raise SubsonicError(GENERIC, str(exc)) from None
    return {}


async def starred_lists(call: Call) -> dict[str, list[dict[str, Any]]]:
    """The caller's starred artists, albums and songs (oldest star first), each with its ``starred``."""
    stars = await call.state.marks.starred(call.user.id)
    catalog = call.state.catalog
    lists: dict[str, list[dict[str, Any]]] = {"artist": [], "album": [], "song": []}
    songs = []
    for key, at in stars.items():
        kind, library_id = parse_id(key) or ("", "")
        when = {"starred": mapping.iso(at / 1000)}
        if kind == "artist" and (found := browse.get_artist(catalog, library_id)) is not None:
            lists["artist"].append({**mapping.artist(found[0]), **when})
        elif kind == "album" and (album := browse.get_album(catalog, library_id)) is not None:
            lists["album"].append({**mapping.album(album[0]), **when})
        elif kind == "track":
            songs.append((library_id, when))
    tracks = {t.item.id: t for t in paging.tracks_by_id(catalog, [i for i, _ in songs])}
    lists["song"] = [mapping.track_song(tracks[i], when) for i, when in songs if i in tracks]
    return lists


async def get_starred2(call: Call) -> dict[str, Any]:
    return {"starred2": await starred_lists(call)}


async def get_starred(call: Call) -> dict[str, Any]:
    return {"starred": await starred_lists(call)}


async def marked_albums(call: Call, kind: str) -> list[dict[str, Any]]:
    """``getAlbumList2`` of ``starred`` (by star time) or ``highest`` (by rating) albums."""
    if kind == "starred":
        stars = await call.state.marks.starred(call.user.id)
        keys = [k for k in stars if k.startswith(mapping.ALBUM_PREFIX)]
    else:
        ratings = await call.state.marks.ratings(call.user.id)
        keys = sorted((k for k in ratings if k.startswith(mapping.ALBUM_PREFIX)), key=lambda k: -ratings[k])
    albums = []
    for key in keys:
        found = browse.get_album(call.state.catalog, key[len(mapping.ALBUM_PREFIX):])
        if found is not None:
            albums.append(mapping.album(found[0]))
    return albums


def _marked_objects(value: Any, found: list[dict[str, Any]]) -> None:
    """Every song, album and artist object in an answer (a dict whose ``id`` is one of ours: a track,
    ``al-…`` or ``ar-…``; a folder directory too, which the spec gives the same fields)."""
    if isinstance(value, dict):
        key = value.get("id")
        if isinstance(key, str) and parse_id(key) is not None:
            found.append(value)
        for child in value.values():
            if isinstance(child, (dict, list)):
                _marked_objects(child, found)
    elif isinstance(value, list):
        for child in value:
            _marked_objects(child, found)


def add_marks(objects: list[dict[str, Any]], marks: Marks) -> None:
    """``starred`` (ISO time) and ``userRating`` on each object the caller marked (pure)."""
    for body in objects:
        key = body["id"]
        if (at := marks.starred.get(key)) is not None:
            body["starred"] = mapping.iso(at / 1000)
        if (rating := marks.ratings.get(key)) is not None:
            body["userRating"] = rating


def with_marks(handler: Handler) -> Handler:
    """``handler`` whose answer carries the caller's stars and ratings on every song, album and artist:
    one batched read of the mark store per answer, none when it names no such object."""
    async def marked(call: Call) -> Answer:
        answer = await handler(call)
        if not isinstance(answer, Mapping):
            return answer
        objects: list[dict[str, Any]] = []
        _marked_objects(answer, objects)
        if objects:
            keys = list(dict.fromkeys(o["id"] for o in objects))
            add_marks(objects, await call.state.marks.marks_of(call.user.id, keys))
        return answer

    return marked


HANDLERS: dict[str, Handler] = {
    "star": star, "unstar": unstar, "setRating": set_rating, "getStarred": get_starred,
    "getStarred2": get_starred2,
}
