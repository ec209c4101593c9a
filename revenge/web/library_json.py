"""The JSON shapes of the music library: albums, artists, genres, tracks (one function each, so every
route shows them alike; per-user data such as progress is added by the routes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from revenge.library.art_index import ArtIndex
from revenge.library.browse import Album, Artist, Genre, Ref, Track
from revenge.web.item_json import item_json


def _refs(refs: tuple[Ref, ...]) -> list[dict[str, str]]:
    return [{"id": r.id, "name": r.name} for r in refs]


def art_of(art: ArtIndex, shown: Iterable[Album | Artist], tracks: Iterable[Track] = ()) -> dict[str, str]:
    """The pictures of albums and artists (the first of their cover candidates that has one) and of
    tracks, by their ids, in one art-index lookup; those without a picture are left out."""
    shown, tracks = list(shown), list(tracks)
    found = art.art_ids(list(dict.fromkeys([i for s in shown for i in s.cover_items]
                                           + [t.item.id for t in tracks])))
    pictures = {s.id: art_id for s in shown
                if (art_id := next((found[i] for i in s.cover_items if i in found), None)) is not None}
    pictures.update((t.item.id, found[t.item.id]) for t in tracks if t.item.id in found)
    return pictures


def album_json(album: Album, art: dict[str, str] | None = None) -> dict[str, Any]:
    """``art``: pictures by id (``art_of``); the album's is its ``art_id`` (null: none)."""
    return {
        "id": album.id,
        "name": album.name,
        "artist": album.artist,
        "artists": _refs(album.artists),
        "year": album.year,
        "original_year": album.original_year,
        "compilation": album.compilation,
        "genres": _refs(album.genres),
        "label": album.label,
        "track_count": album.track_count,
        "disc_count": album.disc_count,
        "duration_ms": album.duration_ms,
        "added_at": album.added_at,
        "musicbrainz_release_id": album.mb_release_id,
        "musicbrainz_release_group_id": album.mb_release_group_id,
        "art_id": (art or {}).get(album.id),
    }


def artist_json(artist: Artist, art: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": artist.id,
        "name": artist.name,
        "sort_name": artist.sort_name,
        "musicbrainz_id": artist.mb_artist_id,
        "album_count": artist.album_count,
        "track_count": artist.track_count,
        "art_id": (art or {}).get(artist.id),
    }


def genre_json(genre: Genre) -> dict[str, Any]:
    return {"id": genre.id, "name": genre.name, "album_count": genre.album_count,
            "track_count": genre.track_count}


def track_json(track: Track, art: dict[str, str] | None = None) -> dict[str, Any]:
    """An item as listed, with its album, its artists and every tag read from its file."""
    body = item_json(track.item, with_chapters=False, art_id=(art or {}).get(track.item.id))
    body["album_id"] = track.album_id
    body["artists"] = _refs(track.artists)
    body["tags"] = track.tags.as_json()
    return body


def discs_json(tracks: list[Track], progress: list[dict[str, Any]],
               art: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Tracks (in disc and track order) grouped by disc, each with the caller's ``progress``."""
    discs: list[dict[str, Any]] = []
    for track, state in zip(tracks, progress, strict=True):
        number = track.tags.disc_number or 1
        if not discs or discs[-1]["number"] != number:
            discs.append({"number": number, "subtitle": track.tags.disc_subtitle, "tracks": []})
        body = track_json(track, art)
        body["progress"] = state
        discs[-1]["tracks"].append(body)
    return discs
