"""Which album, artists and genres a track belongs to, and their ids. Pure functions.

Ids are 16 base32 characters of a hash of the identity (like item ids), so they survive rescans,
restarts and rebuilding the catalog:

- an album is its MusicBrainz release id when tagged, else (album artist, album title) compared
  case-, width- and whitespace-insensitively. A compilation (the flag, or an album artist spelled like
  "Various Artists") without an album artist belongs to "Various Artists", so its tracks by many
  artists stay one album. Neither the disc nor the folder is part of it: a two-disc album, or one
  split across folders, is one album when its tags agree.
- an artist is their name compared the same way (one artist on tracks tagged with and without a
  MusicBrainz id; the id is shown when any of their tracks has it). A genre likewise.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from revenge.library.tags import Tags

T = TypeVar("T")
VARIOUS_ARTISTS = "Various Artists"
_VARIOUS_SPELLINGS = frozenset({"various artists", "various", "va", "v.a.", "v/a", "varios artistas"})
_SPACE_RE = re.compile(r"\s+")
_MBID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fold(text: str) -> str:
    """The form names are compared in: NFKC, case-folded, runs of white space as one space."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def stable_id(kind: str, identity: str) -> str:
    digest = hashlib.sha256(f"{kind}\x00{identity}".encode()).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def mbid(text: str | None) -> str | None:
    """A MusicBrainz id in its canonical form, None when the tag holds something else."""
    if not text:
        return None
    value = text.strip().lower()
    return value if _MBID_RE.fullmatch(value) else None


def is_various(name: str) -> bool:
    return fold(name) in _VARIOUS_SPELLINGS


@dataclass(frozen=True, slots=True)
class ArtistRef:
    id: str
    name: str
    mb_id: str | None


def artist_ref(name: str, mb_id: str | None = None) -> ArtistRef:
    display = VARIOUS_ARTISTS if is_various(name) else name
    return ArtistRef(stable_id("artist", fold(display)), display, mbid(mb_id))


def _refs(names: tuple[str, ...], mb_ids: tuple[str, ...]) -> tuple[ArtistRef, ...]:
    # MusicBrainz ids pair with names by position only when there are as many of each.
    paired = mb_ids if len(mb_ids) == len(names) else ()
    refs = [artist_ref(name, paired[i] if paired else None) for i, name in enumerate(names)]
    unique: dict[str, ArtistRef] = {}
    for ref in refs:
        unique.setdefault(ref.id, ref)
    return tuple(unique.values())


def track_artists(tags: Tags) -> tuple[ArtistRef, ...]:
    return _refs(tags.artists, tags.mb_artist_ids)


def album_artists(tags: Tags) -> tuple[ArtistRef, ...]:
    """The album's artists: as tagged; "Various Artists" for an untagged compilation; else the
    track's artists (an album of one artist is often tagged without an album artist)."""
    if tags.album_artists:
        return _refs(tags.album_artists, tags.mb_album_artist_ids)
    if tags.compilation:
        return (artist_ref(VARIOUS_ARTISTS),)
    return track_artists(tags)


def album_identity(tags: Tags) -> str | None:
    """What makes two tracks one album; None for a track without an album title."""
    if not tags.album:
        return None
    release = mbid(tags.mb_release_id)
    if release is not None:
        return f"mb\x00{release}"
    artists = "\x00".join(sorted(ref.id for ref in album_artists(tags)))
    return f"tags\x00{artists}\x00{fold(tags.album)}"


def album_id(tags: Tags) -> str | None:
    identity = album_identity(tags)
    return None if identity is None else stable_id("album", identity)


def genre_ref(name: str) -> tuple[str, str]:
    """(id, name) of a genre."""
    return stable_id("genre", fold(name)), name


@dataclass(frozen=True, slots=True)
class AlbumSummary:
    """What an album shows, agreed from its tracks' tags (the most common value wins)."""

    name: str
    sort_name: str
    artist: str
    artist_sort: str
    year: int | None
    original_year: int | None
    compilation: bool
    mb_release_id: str | None
    mb_release_group_id: str | None
    label: str | None
    disc_count: int


def _most_common(values: Sequence[T | None]) -> T | None:
    present = [v for v in values if v is not None]
    return Counter(present).most_common(1)[0][0] if present else None


def summarize_album(tracks: Sequence[Tags]) -> AlbumSummary:
    """``tracks`` (at least one, in disc and track order) of one album."""
    name = _most_common([t.album for t in tracks]) or ""
    artists = _most_common([" / ".join(ref.name for ref in album_artists(t)) or None for t in tracks])
    artist_sorts = [t.album_artist_sort or (t.artist_sort if not t.album_artists else None) for t in tracks]
    compilation = any(t.compilation for t in tracks) or is_various(artists or "")
    discs = {t.disc_number or 1 for t in tracks} | {t.disc_total or 1 for t in tracks}
    return AlbumSummary(
        name=name,
        sort_name=_most_common([t.album_sort for t in tracks]) or name,
        artist=artists or "",
        artist_sort=_most_common(artist_sorts) or artists or "",
        year=_most_common([t.year for t in tracks]),
        original_year=_most_common([t.original_year for t in tracks]),
        compilation=compilation,
        mb_release_id=_most_common([mbid(t.mb_release_id) for t in tracks]),
        mb_release_group_id=_most_common([mbid(t.mb_release_group_id) for t in tracks]),
        label=_most_common([t.label for t in tracks]),
        disc_count=max(discs),
    )
