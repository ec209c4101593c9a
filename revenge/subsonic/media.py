"""Media: ``getCoverArt``, ``stream``, ``download``, ``getLyricsBySongId`` (songLyrics), ``getLyrics``.

``stream`` and ``download`` send the original file with Range through the native direct-play path.
Cover art ids are an art id, a track's id, ``al-<album>`` or ``ar-<artist>`` (their first picture);
any ``size`` is served as the nearest of the fixed sizes at or above it, so the cache stays bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.responses import Response

from revenge.hls.progressive import choose_format
from revenge.library import browse
from revenge.library.art import ART_SIZES, DEFAULT_ART_SIZE, is_art_id
from revenge.library.freshness import is_fresh, refresh_current
from revenge.library.lyrics import Lyrics, find_lyrics
from revenge.library.model import Item
from revenge.subsonic.envelope import GENERIC, SubsonicError, not_found
from revenge.subsonic.mapping import parse_id, suffix_of
from revenge.subsonic.protocol import Call, Handler
from revenge.subsonic.transcoded import transcoded
from revenge.web.routes_art import serve_art
from revenge.web.routes_direct import serve_original


def art_size(requested: int | None) -> int:
    if requested is None:
        return DEFAULT_ART_SIZE
    return next((s for s in ART_SIZES if s >= requested), ART_SIZES[-1])


def _art_id_of(call: Call, value: str) -> str | None:
    if is_art_id(value):
        return value
    parsed = parse_id(value)
    if parsed is None:
        return None
    kind, library_id = parsed
    art = call.state.art
    if kind == "track":
        return art.art_id(library_id)
    if kind == "album":
        found = browse.get_album(call.state.catalog, library_id)
        ids = [t.item.id for t in found[1]] if found else []
    else:
        artist = browse.get_artist(call.state.catalog, library_id)
        albums = (artist[1] + artist[2]) if artist else []
        ids = []
        for album in albums[:20]:
            tracks = browse.get_album(call.state.catalog, album.id)
            ids.extend(t.item.id for t in (tracks[1][:1] if tracks else []))
    found_ids = art.art_ids(ids) if ids else {}
    return next((found_ids[i] for i in ids if i in found_ids), None)


async def get_cover_art(call: Call) -> Response:
    value = call.require("id")
    size = art_size(call.opt_int("size"))
    art_id = await anyio.to_thread.run_sync(_art_id_of, call, value)
    if art_id is None:
        raise not_found("Cover art")
    return await serve_art(call.request, art_id, size)


async def current_item(call: Call, name: str = "id") -> Item:
    parsed = parse_id(call.require(name))
    item = call.state.catalog.get_item(parsed[1]) if parsed and parsed[0] == "track" else None
    if item is None:
        raise not_found("Song")
    if not is_fresh(item):
        item = await anyio.to_thread.run_sync(refresh_current, call.state.settings, call.state.catalog,
                                              item.id)
        if item is None:
            raise not_found("Song")
    return item


def wants_original(item: Item, fmt: str | None, max_kbps: int) -> bool:
    """Whether ``stream`` sends the file as it is: ``format=raw``; no format and no bit-rate cap; or
    the format asked for is the file's, within the cap. Pure."""
    if fmt == "raw":
        return True
    fits = max_kbps <= 0 or item.bit_rate <= max_kbps * 1000
    if not fmt:
        return fits
    suffix = suffix_of(item.first.path, item.codec)
    return fits and len(item.files) == 1 and fmt.lower() in (suffix, item.codec)


async def stream(call: Call) -> Response:
    item = await current_item(call)
    fmt, max_kbps = call.get("format"), call.int("maxBitRate", 0)
    if wants_original(item, fmt, max_kbps):
        return await serve_original(call.request, item)
    chosen = choose_format(fmt, max_kbps)
    if chosen is None:
        raise SubsonicError(GENERIC, f"Unknown format: {str(fmt)[:16]} (raw, mp3, opus, aac)")
    offset = call.int("timeOffset", 0, 0, item.duration_ms // 1000)
    return await transcoded(call, item, chosen[0], chosen[1], offset)


async def download(call: Call) -> Response:
    response = await serve_original(call.request, await current_item(call))
    response.headers["content-disposition"] = "attachment"
    return response


def _lines(lyrics: Lyrics) -> list[dict[str, Any]]:
    if lyrics.synced:
        return [{"start": line.start_ms, "value": line.text} for line in lyrics.lines]
    return [{"value": line.text} for line in lyrics.lines]


async def get_lyrics_by_song_id(call: Call) -> dict[str, Any]:
    item = await current_item(call)
    lyrics = await anyio.to_thread.run_sync(find_lyrics, Path(item.first.path))
    if lyrics is None:
        return {"lyricsList": {"structuredLyrics": []}}
    return {"lyricsList": {"structuredLyrics": [{
        "displayArtist": item.artist, "displayTitle": item.title, "lang": lyrics.language or "xxx",
        "offset": 0, "synced": lyrics.synced, "line": _lines(lyrics)}]}}


async def get_lyrics(call: Call) -> dict[str, Any]:
    """Plain lyrics by artist and title: the first track of that title (and artist) that has some."""
    artist, title = call.get("artist"), call.get("title")
    if not title:
        return {"lyrics": {}}
    found = browse.search(call.state.catalog, title, 20).tracks
    wanted = [t for t in found if t.item.title.casefold() == title.casefold()
              and (not artist or (t.item.artist or "").casefold() == artist.casefold())]
    for track in wanted[:5]:
        lyrics = await anyio.to_thread.run_sync(find_lyrics, Path(track.item.first.path))
        if lyrics is not None:
            return {"lyrics": {"artist": track.item.artist, "title": track.item.title,
                               "value": "\n".join(line.text for line in lyrics.lines)}}
    return {"lyrics": {}}


HANDLERS: dict[str, Handler] = {
    "getCoverArt": get_cover_art, "stream": stream, "download": download,
    "getLyricsBySongId": get_lyrics_by_song_id, "getLyrics": get_lyrics,
}
