"""Library objects in the spec's shapes (pure): a track as ``Child``, an album as ``AlbumID3``, an artist
as ``ArtistID3``, a genre. Ids: tracks keep their item id; albums and artists get ``al-``/``ar-`` in
front of theirs, so one id space (``getCoverArt``, ``getMusicDirectory``) tells them apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from revenge.library.browse import Album, Artist, Genre, Ref, Track
from revenge.library.media_types import media_type_for
from revenge.library.model import ITEM_ID_RE, Item
from revenge.library.tags import Tags
from revenge.library.track_summary import TrackSummary, summary_of, summary_of_track

ALBUM_PREFIX = "al-"
ARTIST_PREFIX = "ar-"
_LIBRARY_ID_RE = re.compile(r"[a-z2-7]{16}")
MUSIC_FOLDER_ID = 1


def album_ref(library_id: str) -> str:
    return ALBUM_PREFIX + library_id


def artist_ref(library_id: str) -> str:
    return ARTIST_PREFIX + library_id


def parse_id(value: str) -> tuple[str, str] | None:
    """``("album"|"artist"|"track", library id)`` for an id of ours; None for anything else (checked
    whole: nothing a client sends reaches a lookup unless it has the format)."""
    for prefix, kind in ((ALBUM_PREFIX, "album"), (ARTIST_PREFIX, "artist")):
        if value.startswith(prefix) and _LIBRARY_ID_RE.fullmatch(value[len(prefix):]):
            return kind, value[len(prefix):]
    return ("track", value) if ITEM_ID_RE.fullmatch(value) else None


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _refs(refs: tuple[Ref, ...]) -> list[dict[str, str]]:
    return [{"id": artist_ref(r.id), "name": r.name} for r in refs]


def suffix_of(path: str, codec: str) -> str:
    dot = path.rfind(".")
    return path[dot + 1:].lower() if dot > path.rfind("/") else codec


def song(t: TrackSummary, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Child`` of a track (or episode, or book: the spec's song shape fits them all)."""
    artists = t.artists
    album = album_ref(t.album_id) if t.album_id else None
    body: dict[str, Any] = {
        "id": t.id,
        "parent": album,
        "isDir": False,
        "title": t.title,
        "album": t.album,
        "artist": t.artist or (artists[0].name if artists else None),
        "track": t.track_number,
        "discNumber": t.disc_number,
        "year": t.year,
        "genre": t.genre,
        "coverArt": t.id,
        "size": t.size,
        "contentType": media_type_for(t.path, t.container),
        "suffix": suffix_of(t.path, t.codec),
        "duration": t.duration_ms // 1000,
        "bitRate": t.bit_rate // 1000,
        "samplingRate": t.sample_rate,
        "channelCount": t.channels,
        "isVideo": False,
        "type": "music" if t.type == "track" else ("podcast" if t.type == "episode" else "audiobook"),
        "mediaType": "song",
        "albumId": album,
        "artistId": artist_ref(artists[0].id) if artists else None,
        "bpm": int(t.bpm) if t.bpm else None,
        "comment": t.comment,
        "sortName": t.title_sort,
        "musicBrainzId": t.mb_recording_id,
        "genres": [{"name": g} for g in t.genres],
        "artists": _refs(artists),
        "displayArtist": t.artist or ", ".join(a.name for a in artists) or None,
        "displayAlbumArtist": t.album_artist,
    }
    gain = {"trackGain": t.rg_track_gain, "trackPeak": t.rg_track_peak,
            "albumGain": t.rg_album_gain, "albumPeak": t.rg_album_peak}
    if any(v is not None for v in gain.values()):
        body["replayGain"] = {k: v for k, v in gain.items() if v is not None}
    if extra:
        body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def item_song(item: Item, tags: Tags, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return song(summary_of(item, tags), extra)


def track_song(track: Track, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return song(summary_of_track(track), extra)


def album(a: Album, songs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ``AlbumID3`` (with its ``song`` list when given: ``getAlbum``)."""
    body: dict[str, Any] = {
        "id": album_ref(a.id),
        "name": a.name,
        "title": a.name,  # the child-shaped fields getAlbumList (folder clients) reads
        "album": a.name,
        "isDir": True,
        "artist": a.artist,
        "artistId": artist_ref(a.artists[0].id) if a.artists else None,
        "coverArt": album_ref(a.id),
        "songCount": a.track_count,
        "duration": a.duration_ms // 1000,
        "created": iso(a.added_at),
        "year": a.year,
        "genre": a.genres[0].name if a.genres else None,
        "musicBrainzId": a.mb_release_id,
        "genres": [{"name": g.name} for g in a.genres],
        "artists": _refs(a.artists),
        "displayArtist": a.artist,
        "isCompilation": a.compilation,
        "recordLabels": [{"name": a.label}] if a.label else [],
        "originalReleaseDate": {"year": a.original_year} if a.original_year else None,
        "discTitles": [],
    }
    if songs is not None:
        body["song"] = songs
    return {k: v for k, v in body.items() if v is not None}


def artist(a: Artist, albums: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": artist_ref(a.id), "name": a.name, "coverArt": artist_ref(a.id),
                            "albumCount": a.album_count, "musicBrainzId": a.mb_artist_id,
                            "sortName": a.sort_name}
    if albums is not None:
        body["album"] = albums
    return {k: v for k, v in body.items() if v is not None}


def genre(g: Genre) -> dict[str, Any]:
    return {"value": g.name, "songCount": g.track_count, "albumCount": g.album_count}


IGNORED_ARTICLES = ("The", "El", "La", "Los", "Las", "Le", "Les")


def index_letter(name: str) -> str:
    """The ``index`` an artist is filed under: the first letter after an ignored article, "#" for
    anything but a letter."""
    words = name.split(" ", 1)
    if len(words) == 2 and words[0] in IGNORED_ARTICLES:
        name = words[1]
    first = name[:1].upper()
    return first if first.isalpha() else "#"
