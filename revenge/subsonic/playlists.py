"""``getPlaylists``, ``getPlaylist``, ``createPlaylist``, ``updatePlaylist``, ``deletePlaylist``: the
caller's own playlists (playback.playlists, both store backends)."""

from __future__ import annotations

import re
from typing import Any

from revenge.library import paging
from revenge.playback import playlists as rules
from revenge.playback.playlists import Playlist, PlaylistError
from revenge.progress.service import now_ms
from revenge.subsonic import mapping
from revenge.subsonic.envelope import GENERIC, SubsonicError, not_found
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


async def _playlist(call: Call, name: str) -> Playlist:
    playlist_id = call.require(name)
    found = (await call.state.playlists.get(call.user.id, playlist_id)
             if _PLAYLIST_ID_RE.fullmatch(playlist_id) else None)
    if found is None:
        raise not_found("Playlist")
    return found


def _json(call: Call, playlist: Playlist, entries: bool) -> dict[str, Any]:
    items = call.state.catalog.cached_items(list(dict.fromkeys(playlist.items)))
    body: dict[str, Any] = {
        "id": playlist.id, "name": playlist.name, "comment": playlist.comment or None,
        "owner": call.user.name, "public": playlist.public, "songCount": len(playlist.items),
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
    found = await call.state.playlists.all(call.user.id)
    return {"playlists": {"playlist": [_json(call, p, False) for p in found]}}


async def get_playlist(call: Call) -> dict[str, Any]:
    return {"playlist": _json(call, await _playlist(call, "id"), True)}


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
