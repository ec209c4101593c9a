"""``getPlaylists``, ``getPlaylist``, ``createPlaylist``, ``updatePlaylist``, ``deletePlaylist``: the
caller's own playlists (playback.playlists, both store backends), and the ones other users made public:
listed and readable by everyone, changed by their owner alone (error 50 for anyone else)."""

from __future__ import annotations

import re
from typing import Any

from revenge.library import paging
from revenge.playback import playlists as rules
from revenge.playback.playlists import Playlist, PlaylistError
from revenge.progress.service import now_ms
from revenge.subsonic import mapping
from revenge.subsonic.envelope import GENERIC, NOT_AUTHORIZED, SubsonicError, not_found
from revenge.subsonic.mapping import parse_id
from revenge.subsonic.protocol import Call, Handler

_PLAYLIST_ID_RE = re.compile(r"pl-[0-9a-f]{16}")


def _songs(call: Call, name: str) -> list[str]:
    ids = call.all(name)
    if len(ids) > rules.MAX_ENTRIES:
        raise SubsonicError(GENERIC, f"A playlist holds at most {rules.MAX_ENTRIES} entries")
    for value in dict.fromkeys(ids):
        parsed = parse_id(value)
        if parsed is None or parsed[0] != "track" or call.state.catalog.get_item(value) is None:
            raise not_found("Song")
    return ids


async def _readable(call: Call, name: str) -> tuple[str, Playlist]:
    """The playlist ``name`` names and its owner's user name: the caller's own, or another user's
    public one; 70 for any other (a private playlist of someone else is not there, as far as the caller
    can tell)."""
    playlist_id = call.require(name)
    if not _PLAYLIST_ID_RE.fullmatch(playlist_id):
        raise not_found("Playlist")
    own = await call.state.playlists.get(call.user.id, playlist_id)
    if own is not None:
        return call.user.name, own
    shared = await call.state.playlists.get_public(playlist_id)
    owner = call.state.users.by_id(shared[0]) if shared is not None else None
    if shared is None or owner is None:
        raise not_found("Playlist")
    return owner.name, shared[1]


async def _playlist(call: Call, name: str) -> Playlist:
    """The caller's own playlist, to change: 50 for another user's public one, 70 for anything else."""
    owner, playlist = await _readable(call, name)
    if owner != call.user.name:
        raise SubsonicError(NOT_AUTHORIZED, "Only its owner may change a playlist")
    return playlist


def _json(call: Call, playlist: Playlist, entries: bool, owner: str | None = None) -> dict[str, Any]:
    items = call.state.catalog.cached_items(list(dict.fromkeys(playlist.items)))
    body: dict[str, Any] = {
        "id": playlist.id, "name": playlist.name, "comment": playlist.comment or None,
        "owner": owner or call.user.name, "public": playlist.public, "songCount": len(playlist.items),
        "duration": sum(items[i].duration_ms for i in playlist.items if i in items) // 1000,
        "created": mapping.iso(playlist.created_ms / 1000),
        "changed": mapping.iso(playlist.changed_ms / 1000),
        "coverArt": playlist.items[0] if playlist.items else None}
    if entries:
        tracks = {t.item.id: t for t in paging.tracks_by_id(call.state.catalog,
                                                             list(dict.fromkeys(playlist.items)))}
        body["entry"] = [mapping.track_song(tracks[i]) for i in playlist.items if i in tracks]
    return {k: v for k, v in body.items() if v is not None}


async def get_playlists(call: Call) -> dict[str, Any]:
    """The caller's playlists, then the other users' public ones (each by name)."""
    own = [_json(call, p, False) for p in await call.state.playlists.all(call.user.id)]
    names: dict[str, str | None] = {}
    shared = []
    for owner_id, playlist in await call.state.playlists.public():
        if owner_id == call.user.id:
            continue
        if owner_id not in names:
            user = call.state.users.by_id(owner_id)
            names[owner_id] = user.name if user is not None else None
        if (name := names[owner_id]) is not None:
            shared.append(_json(call, playlist, False, name))
    return {"playlists": {"playlist": own + shared}}


async def get_playlist(call: Call) -> dict[str, Any]:
    owner, playlist = await _readable(call, "id")
    return {"playlist": _json(call, playlist, True, owner)}


async def create_playlist(call: Call) -> dict[str, Any]:
    songs = _songs(call, "songId")
    try:
        if call.get("playlistId"):  # the older way of replacing a playlist's songs
            existing = await _playlist(call, "playlistId")
            changed = rules.update(existing, now_ms(), remove=range(len(existing.items)), add=songs,
                                   name=call.get("name") or None)
            if not await call.state.playlists.put(call.user.id, changed):
                raise not_found("Playlist")
            return {"playlist": _json(call, changed, True)}
        playlist = rules.create(call.require("name"), songs, now_ms())
    except PlaylistError as exc:
        raise SubsonicError(GENERIC, str(exc)) from None
    if not await call.state.playlists.add(call.user.id, playlist):
        raise SubsonicError(GENERIC, f"A user has at most {rules.MAX_PLAYLISTS} playlists")
    return {"playlist": _json(call, playlist, True)}


async def update_playlist(call: Call) -> dict[str, Any]:
    playlist = await _playlist(call, "playlistId")
    try:
        remove = [int(i) for i in call.all("songIndexToRemove")]
    except ValueError:
        raise SubsonicError(GENERIC, "songIndexToRemove must be integers") from None
    public = call.get("public")
    try:
        changed = rules.update(playlist, now_ms(), name=call.get("name"), comment=call.get("comment"),
                               public=None if public is None else public.lower() == "true",
                               add=_songs(call, "songIdToAdd"), remove=remove)
    except PlaylistError as exc:
        raise SubsonicError(GENERIC, str(exc)) from None
    if not await call.state.playlists.put(call.user.id, changed):
        raise not_found("Playlist")
    return {}


async def delete_playlist(call: Call) -> dict[str, Any]:
    playlist = await _playlist(call, "id")
    if not await call.state.playlists.delete(call.user.id, playlist.id):
        raise not_found("Playlist")
    return {}


HANDLERS: dict[str, Handler] = {
    "getPlaylists": get_playlists, "getPlaylist": get_playlist, "createPlaylist": create_playlist,
    "updatePlaylist": update_playlist, "deletePlaylist": delete_playlist,
}
