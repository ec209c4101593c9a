"""The JSON shape of an item: one function, so every route that shows items shows them alike
(routes that add per-user data, like progress, add keys to this dict)."""

from __future__ import annotations

from typing import Any

from revenge.library.model import Item


def container_name(container: str) -> str:
    """FFmpeg's demuxer name as a client knows the format: "mov,mp4,m4a,…" is "mp4"."""
    first = container.split(",")[0]
    return "mp4" if first == "mov" else first


def item_json(item: Item, *, with_chapters: bool = True, art_id: str | None = None) -> dict[str, Any]:
    """The public view of ``item``. File paths are never shown. Lists leave chapters out (a page of
    books would be mostly chapters) and give ``chapter_count`` instead. ``art_id``: its cover art
    (``GET /api/v1/art/{art_id}``), looked up by the caller in the art index."""
    body: dict[str, Any] = {
        "id": item.id,
        "type": item.type,
        "title": item.title,
        "artist": item.artist,
        "album": item.album,
        "album_artist": item.album_artist,
        "track_number": item.track_number,
        "disc_number": item.disc_number,
        "genre": item.genre,
        "duration_ms": item.duration_ms,
        "codec": item.codec,
        "container": container_name(item.container),
        "sample_rate": item.sample_rate,
        "channels": item.channels,
        "bit_rate": item.bit_rate,
        "lossless": item.lossless,
        "files": len(item.files),
        "chapter_count": len(item.chapters),
        "art_id": art_id,  # cover art
    }
    if with_chapters:
        body["chapters"] = [
            {"index": c.index, "title": c.title, "start_ms": c.start_ms, "end_ms": c.end_ms}
            for c in item.chapters
        ]
    return body
