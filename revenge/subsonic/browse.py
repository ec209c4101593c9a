"""Browsing: by ID3 tags (``getArtists``, ``getArtist``, ``getAlbum``, ``getSong``, ``getGenres``), by
folder for folder clients (``getIndexes``, ``getMusicDirectory``: artists → albums → songs), the album
lists, random songs, songs of a genre, search, and what the library knows of an artist or album."""

from __future__ import annotations

import secrets
from typing import Any

import anyio.to_thread

from revenge.library import browse, paging
from revenge.library.browse import Album, Artist
from revenge.library.tags import Tags
from revenge.library.track_summary import summary_of_track
from revenge.subsonic import mapping
from revenge.subsonic.envelope import GENERIC, SubsonicError, missing, not_found
from revenge.subsonic.mapping import parse_id
from revenge.subsonic.marks import marked_albums
from revenge.subsonic.protocol import Call, Handler

PAGE = paging.MAX_PAGE


def _library_id(call: Call, kind: str, name: str = "id") -> str:
    parsed = parse_id(call.require(name))
    if parsed is None or parsed[0] != kind:
        raise not_found(kind.capitalize())
    return parsed[1]


def _all_artists(call: Call) -> list[Artist]:
    found: list[Artist] = []
    while len(page := paging.artists_at(call.state.catalog, len(found), PAGE)) == PAGE:
        found.extend(page)
    return found + page


def _indexed(artists: list[Artist]) -> list[dict[str, Any]]:
    index: dict[str, list[dict[str, Any]]] = {}
    for a in artists:
        index.setdefault(mapping.index_letter(a.name), []).append(mapping.artist(a))
    return [{"name": letter, "artist": index[letter]} for letter in sorted(index)]


async def get_artists(call: Call) -> dict[str, Any]:
    artists = await anyio.to_thread.run_sync(_all_artists, call)
    return {"artists": {"ignoredArticles": " ".join(mapping.IGNORED_ARTICLES), "index": _indexed(artists)}}


async def get_indexes(call: Call) -> dict[str, Any]:
    artists = await anyio.to_thread.run_sync(_all_artists, call)
    return {"indexes": {"ignoredArticles": " ".join(mapping.IGNORED_ARTICLES), "lastModified": 0,
                        "index": _indexed(artists)}}


def _artist_albums(call: Call, artist_id: str) -> tuple[Artist, list[Album]]:
    found = browse.get_artist(call.state.catalog, artist_id)
    if found is None:
        raise not_found("Artist")
    artist, own, appears = found
    return artist, own + appears


async def get_artist(call: Call) -> dict[str, Any]:
    artist, albums = _artist_albums(call, _library_id(call, "artist"))
    return {"artist": mapping.artist(artist, [mapping.album(a) for a in albums])}


def _album(call: Call, album_id: str) -> dict[str, Any]:
    found = browse.get_album(call.state.catalog, album_id)
    if found is None:
        raise not_found("Album")
    album, tracks = found
    return mapping.album(album, [mapping.track_song(t) for t in tracks])


async def get_album(call: Call) -> dict[str, Any]:
    return {"album": _album(call, _library_id(call, "album"))}


async def get_song(call: Call) -> dict[str, Any]:
    item_id = _library_id(call, "track")
    tracks = paging.tracks_by_id(call.state.catalog, [item_id])
    if not tracks:
        item = call.state.catalog.get_item(item_id)  # an episode or a book: no album, no track artists
        if item is None:
            raise not_found("Song")
        return {"song": mapping.item_song(item, call.state.catalog.track_tags(item_id) or Tags())}
    return {"song": mapping.track_song(tracks[0])}


async def get_music_directory(call: Call) -> dict[str, Any]:
    parsed = parse_id(call.require("id"))
    if parsed is None or parsed[0] == "track":
        raise not_found("Directory")
    kind, library_id = parsed
    if kind == "artist":
        artist, albums = _artist_albums(call, library_id)
        children = [{**mapping.album(a), "parent": mapping.artist_ref(artist.id)} for a in albums]
        return {"directory": {"id": mapping.artist_ref(artist.id), "name": artist.name, "child": children}}
    album = _album(call, library_id)
    return {"directory": {"id": album["id"], "name": album["name"], "parent": album.get("artistId"),
                          "child": album.get("song", [])}}


async def get_genres(call: Call) -> dict[str, Any]:
    genres: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page, cursor = browse.list_genres(call.state.catalog, cursor=cursor, limit=PAGE)
        genres.extend(mapping.genre(g) for g in page)
        if cursor is None:
            return {"genres": {"genre": genres}}


_LIST_SORTS: dict[str, browse.AlbumSort] = {"random": "random", "newest": "newest",
                                            "alphabeticalByName": "alphabetical",
                                            "alphabeticalByArtist": "artist", "byYear": "year",
                                            "byGenre": "alphabetical"}
# Lists of what the user did: from the marks (starred, highest) and the progress store's played lists.
_USER_LISTS = ("frequent", "recent", "highest", "starred")
_MARKED = ("highest", "starred")
_PLAYED: dict[str, browse.PlayedSort] = {"recent": "recently_played", "frequent": "frequent"}


def _album_list(call: Call) -> list[dict[str, Any]]:
    kind = call.require("type")
    size, offset = call.int("size", 10, 0, PAGE), call.int("offset", 0)
    if kind in _USER_LISTS:
        return []
    if kind not in _LIST_SORTS:
        raise SubsonicError(GENERIC, f"Unknown album list type: {kind[:32]}")
    genre = call.require("genre") if kind == "byGenre" else None
    year_from = year_to = None
    descending = False
    if kind == "byYear":
        year_from, year_to = call.int("fromYear", 0, 0, 9999), call.int("toYear", 9999, 0, 9999)
        if call.get("fromYear") is None or call.get("toYear") is None:
            raise missing("fromYear" if call.get("fromYear") is None else "toYear")
        if year_from > year_to:  # the spec's way of asking for newest first
            year_from, year_to, descending = year_to, year_from, True
    seed = secrets.randbelow(2**31) if kind == "random" else 0
    albums = paging.albums_at(call.state.catalog, sort=_LIST_SORTS[kind], offset=offset, size=size,
                              genre=genre, year_from=year_from, year_to=year_to, seed=seed,
                              descending=descending)
    return [mapping.album(a) for a in albums]


async def _albums(call: Call) -> list[dict[str, Any]]:
    kind = call.get("type")
    if kind in _MARKED or kind in _PLAYED:
        offset, size = call.int("offset", 0), call.int("size", 10, 0, PAGE)
        if kind in _MARKED:
            return (await marked_albums(call, kind))[offset:offset + size]
        played = await call.state.progress.played(call.user.id, "track", "recent" if kind == "recent"
                                                  else "frequent", browse.PLAYED_TRACKS)
        albums, _ = browse.list_played_albums(
            call.state.catalog, [(p.item_id, p.last_played_at, p.play_count) for p in played],
            sort=_PLAYED[kind], limit=min(offset + size, browse.PLAYED_TRACKS))
        return [mapping.album(a) for a in albums[offset:offset + size]]
    return await anyio.to_thread.run_sync(_album_list, call)


async def get_album_list2(call: Call) -> dict[str, Any]:
    return {"albumList2": {"album": await _albums(call)}}


async def get_album_list(call: Call) -> dict[str, Any]:
    albums = await _albums(call)
    return {"albumList": {"album": [{**a, "parent": a.get("artistId")} for a in albums]}}


async def get_random_songs(call: Call) -> dict[str, Any]:
    tracks = paging.random_tracks(call.state.catalog, call.int("size", 10, 0, PAGE), call.get("genre"),
                                  call.opt_int("fromYear"), call.opt_int("toYear"))
    return {"randomSongs": {"song": [mapping.track_song(t) for t in tracks]}}


async def get_songs_by_genre(call: Call) -> dict[str, Any]:
    genre = call.require("genre")
    tracks = paging.summaries_at(call.state.catalog, call.int("offset", 0), call.int("count", 10, 0, PAGE),
                                 genre)
    return {"songsByGenre": {"song": [mapping.song(t) for t in tracks]}}


def _search(call: Call) -> dict[str, Any]:
    query = (call.get("query") or "").strip().strip('"').strip()
    counts = {k: call.int(f"{k}Count", 20, 0, PAGE) for k in ("artist", "album", "song")}
    offsets = {k: call.int(f"{k}Offset", 0) for k in ("artist", "album", "song")}
    catalog = call.state.catalog
    if not query:  # everything, paged: how clients sync a whole library
        artists = paging.artists_at(catalog, offsets["artist"], counts["artist"])
        albums = paging.albums_at(catalog, offset=offsets["album"], size=counts["album"])
        songs = paging.summaries_at(catalog, offsets["song"], counts["song"])
    else:
        limit = min(max(offsets[k] + counts[k] for k in counts), 2 * PAGE)
        found = browse.search(catalog, query, limit)
        artists = found.artists[offsets["artist"]:][:counts["artist"]]
        albums = found.albums[offsets["album"]:][:counts["album"]]
        songs = [summary_of_track(t) for t in found.tracks[offsets["song"]:][:counts["song"]]]
    return {"artist": [mapping.artist(a) for a in artists], "album": [mapping.album(a) for a in albums],
            "song": [mapping.song(t) for t in songs]}


async def search3(call: Call) -> dict[str, Any]:
    return {"searchResult3": await anyio.to_thread.run_sync(_search, call)}


async def search2(call: Call) -> dict[str, Any]:
    return {"searchResult2": await anyio.to_thread.run_sync(_search, call)}


async def get_artist_info2(call: Call) -> dict[str, Any]:
    artist, _ = _artist_albums(call, _library_id(call, "artist"))
    info: dict[str, Any] = {"musicBrainzId": artist.mb_artist_id} if artist.mb_artist_id else {}
    return {"artistInfo2": info}


async def get_artist_info(call: Call) -> dict[str, Any]:
    return {"artistInfo": (await get_artist_info2(call))["artistInfo2"]}


async def get_album_info2(call: Call) -> dict[str, Any]:
    album = _album(call, _library_id(call, "album"))
    return {"albumInfo": {k: v for k, v in (("musicBrainzId", album.get("musicBrainzId")),) if v}}


HANDLERS: dict[str, Handler] = {
    "getArtists": get_artists, "getIndexes": get_indexes, "getArtist": get_artist, "getAlbum": get_album,
    "getSong": get_song, "getMusicDirectory": get_music_directory, "getGenres": get_genres,
    "getAlbumList2": get_album_list2, "getAlbumList": get_album_list, "getRandomSongs": get_random_songs,
    "getSongsByGenre": get_songs_by_genre, "search3": search3, "search2": search2,
    "getArtistInfo2": get_artist_info2, "getArtistInfo": get_artist_info, "getAlbumInfo2": get_album_info2,
    "getAlbumInfo": get_album_info2,
}
