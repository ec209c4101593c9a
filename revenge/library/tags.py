"""A file's tags, as tagged: multi-valued artists and genres, sort names, totals, MusicBrainz ids,
ReplayGain. PyAV joins a repeated Vorbis field or several ID3 frames into one string, so tags are read
with ``mutagen``, which keeps every value apart; formats mutagen has no tags for (WAV's RIFF INFO, …)
fall back to PyAV's metadata.

Every tag format is first mapped (pure functions, one per format) onto one vocabulary: Vorbis comment
names in lower case, each with its list of values. ``tags_from_fields`` then builds ``Tags`` from that.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

MAX_TAG_LENGTH = 1000
MAX_VALUES = 32  # per field: a file cannot make one track the member of a thousand artists
Fields = dict[str, list[str]]


class TagError(Exception):
    """The file's tags cannot be read: the message is the reason the scanner records."""


@dataclass(frozen=True, slots=True)
class Tags:
    title: str | None = None
    title_sort: str | None = None
    artists: tuple[str, ...] = ()
    artist_sort: str | None = None
    album_artists: tuple[str, ...] = ()
    album_artist_sort: str | None = None
    album: str | None = None
    album_sort: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    disc_subtitle: str | None = None
    date: str | None = None
    year: int | None = None
    original_date: str | None = None
    original_year: int | None = None
    genres: tuple[str, ...] = ()
    compilation: bool = False
    mb_recording_id: str | None = None
    mb_track_id: str | None = None
    mb_release_id: str | None = None
    mb_release_group_id: str | None = None
    mb_artist_ids: tuple[str, ...] = ()
    mb_album_artist_ids: tuple[str, ...] = ()
    rg_track_gain: float | None = None  # dB, relative to the ReplayGain reference (-18 LUFS)
    rg_track_peak: float | None = None  # linear, 1.0 = full scale
    rg_album_gain: float | None = None
    rg_album_peak: float | None = None
    bpm: float | None = None
    label: str | None = None
    comment: str | None = None

    # One string for what shows one name (and the catalog's ``items`` columns).
    @property
    def artist(self) -> str | None:
        return "; ".join(self.artists) or None

    @property
    def album_artist(self) -> str | None:
        return "; ".join(self.album_artists) or None

    @property
    def genre(self) -> str | None:
        return "; ".join(self.genres) or None

    def as_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value and took a sixth of a probe's tag time.
        return {name: getattr(self, name) for name in _FIELD_ORDER}


_FIELD_ORDER = tuple(f.name for f in fields(Tags))
_TUPLE_FIELDS = frozenset(f.name for f in fields(Tags) if f.type == "tuple[str, ...]")
_FIELD_NAMES = frozenset(f.name for f in fields(Tags))


def tags_from_json(data: Mapping[str, Any]) -> Tags:
    """``Tags`` from ``as_json`` (lists back to tuples; keys of an older catalog dropped)."""
    values = {k: (tuple(v) if k in _TUPLE_FIELDS else v) for k, v in data.items() if k in _FIELD_NAMES}
    return Tags(**values)


# ---------------------------------------------------------------------------------------------
# Each format onto the Vorbis vocabulary

# Vorbis, APEv2 and FFmpeg spellings of the same field.
_LOOSE_ALIASES = {
    "album artist": "albumartist", "album_artist": "albumartist", "band": "albumartist",
    "author": "artist", "track": "tracknumber", "trck": "tracknumber", "disc": "discnumber",
    "disk": "discnumber", "tpos": "discnumber", "totaltracks": "tracktotal", "totaldiscs": "disctotal",
    "year": "date", "organization": "label", "publisher": "label", "description": "comment",
    "tempo": "bpm", "title_sort": "titlesort", "album_sort": "albumsort", "artist_sort": "artistsort",
    "album_artist_sort": "albumartistsort", "albumartist_sort": "albumartistsort",
}
# ID3 TXXX descriptions and MP4 freeform names (as Picard writes them), lower case.
_FREEFORM = {
    "musicbrainz track id": "musicbrainz_trackid",  # the recording (Picard's naming)
    "musicbrainz release track id": "musicbrainz_releasetrackid",
    "musicbrainz album id": "musicbrainz_albumid",
    "musicbrainz release group id": "musicbrainz_releasegroupid",
    "musicbrainz artist id": "musicbrainz_artistid",
    "musicbrainz album artist id": "musicbrainz_albumartistid",
    "originalyear": "originalyear", "original year": "originalyear",
}
_ID3 = {
    "TIT2": "title", "TSOT": "titlesort", "TPE1": "artist", "TSOP": "artistsort", "TPE2": "albumartist",
    "TSO2": "albumartistsort", "TALB": "album", "TSOA": "albumsort", "TRCK": "tracknumber",
    "TPOS": "discnumber", "TSST": "discsubtitle", "TDRC": "date", "TYER": "date", "TDOR": "originaldate",
    "TORY": "originalyear", "TCON": "genre", "TCMP": "compilation", "TBPM": "bpm", "TPUB": "label",
    "UFID:http://musicbrainz.org": "musicbrainz_trackid",
}
_MP4 = {
    "\xa9nam": "title", "sonm": "titlesort", "\xa9ART": "artist", "soar": "artistsort",
    "aART": "albumartist", "soaa": "albumartistsort", "\xa9alb": "album", "soal": "albumsort",
    "trkn": "tracknumber", "disk": "discnumber", "\xa9day": "date", "\xa9gen": "genre",
    "cpil": "compilation", "tmpo": "bpm", "\xa9cmt": "comment",
}


def _add(out: Fields, key: str, values: Iterable[str]) -> None:
    out.setdefault(key, []).extend(values)


def loose_fields(raw: Iterable[tuple[str, str]]) -> Fields:
    """Vorbis comments, APEv2 items or FFmpeg metadata: (key, value) pairs, keys in any case, a key
    repeated for several values (values NUL-joined, as in APEv2 and ID3 via FFmpeg, are split)."""
    out: Fields = {}
    for key, value in raw:
        name = key.lower()
        _add(out, _LOOSE_ALIASES.get(name, name), value.split("\x00"))
    return out


def id3_fields(frames: Mapping[str, Sequence[str]]) -> Fields:
    """ID3 frames by mutagen's hash key ("TPE1", "TXXX:REPLAYGAIN_TRACK_GAIN", "COMM::eng") with their
    text values (a v2.4 frame holds several; v2.3 frames are read as v2.4 by mutagen)."""
    out: Fields = {}
    for key, values in frames.items():
        frame, _, rest = key.partition(":")
        if key in _ID3:
            _add(out, _ID3[key], values)
        elif frame == "TXXX" and rest:
            name = rest.lower()
            _add(out, _FREEFORM.get(name, name), values)
        elif frame == "COMM" and not rest.partition(":")[0]:  # a described comment is some tool's data
            _add(out, "comment", values)
    return out


def mp4_fields(atoms: Mapping[str, Sequence[str]]) -> Fields:
    """MP4 atoms with their values as text ("trkn" as "3/12", "cpil" as "1", freeform bytes decoded)."""
    out: Fields = {}
    for key, values in atoms.items():
        if key in _MP4:
            _add(out, _MP4[key], values)
        elif key.startswith("----:"):
            name = key.rpartition(":")[2].lower()
            _add(out, _FREEFORM.get(name, name), values)
    return out


# ---------------------------------------------------------------------------------------------
# The vocabulary onto Tags

_NUMBER_RE = re.compile(r"^\s*0*(\d{1,6})(?!\d)")
_TOTAL_RE = re.compile(r"(?:/|\bof\b)\s*0*(\d{1,6})\s*$")
_YEAR_RE = re.compile(r"^\s*(\d{4})")
_DB_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(?:db)?\s*$", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "yes"})
R128_TO_REPLAYGAIN_DB = 5.0  # R128 gains are relative to -23 LUFS, ReplayGain's to -18 LUFS


def parse_number(text: str | None) -> int | None:
    """Track/disc numbers as tags write them: "3", "03", "3/12", "3 of 12". 0 and junk → None."""
    if not text:
        return None
    match = _NUMBER_RE.match(text)
    if not match:
        return None
    value = int(match.group(1))
    return value if value > 0 else None


def parse_total(text: str | None) -> int | None:
    """The total of "3/12" or "3 of 12"."""
    match = _TOTAL_RE.search(text) if text else None
    value = int(match.group(1)) if match else 0
    return value if value > 0 else None


def parse_year(text: str | None) -> int | None:
    match = _YEAR_RE.match(text) if text else None
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def parse_db(text: str | None) -> float | None:
    """A ReplayGain gain ("-6.48 dB", "+1.2") or peak ("0.98"); None for junk or non-finite."""
    match = _DB_RE.match(text) if text else None
    if not match:
        return None
    value = float(match.group(1))
    return value if abs(value) < 1000 else None


def r128_gain(text: str | None) -> float | None:
    """An Opus R128_*_GAIN (a Q7.8 integer, relative to -23 LUFS) as a ReplayGain gain in dB."""
    if not text or not re.fullmatch(r"\s*[+-]?\d{1,6}\s*", text):
        return None
    return round(int(text) / 256 + R128_TO_REPLAYGAIN_DB, 2)


def _clean(value: str) -> str | None:
    text = value.replace("\x00", "").strip()
    return text[:MAX_TAG_LENGTH] if text else None


def split_names(values: Iterable[str], separators: Sequence[str]) -> tuple[str, ...]:
    """Values as tagged, each further split at any of ``separators`` (none by default: "AC/DC" is
    one artist), cleaned, duplicates (same name ignoring case) dropped, at most MAX_VALUES."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        parts = [value]
        for sep in separators:
            parts = [p for part in parts for p in part.split(sep)]
        for part in parts:
            name = _clean(part)
            if name is not None and name.casefold() not in seen and len(out) < MAX_VALUES:
                seen.add(name.casefold())
                out.append(name)
    return tuple(out)


def tags_from_fields(raw: Mapping[str, Sequence[str]], artist_separators: Sequence[str] = ()) -> Tags:
    """``Tags`` from fields in the Vorbis vocabulary (keys lower case). Picard's ``artists`` (one value
    per artist) wins over ``artist`` (one display string such as "A feat. B") for the artist list."""

    def first(*names: str) -> str | None:
        for name in names:
            for value in raw.get(name, ()):
                cleaned = _clean(value)
                if cleaned is not None:
                    return cleaned
        return None

    def many(name: str, separators: Sequence[str] = ()) -> tuple[str, ...]:
        return split_names(raw.get(name, ()), separators)

    track, disc = first("tracknumber"), first("discnumber")
    date, original = first("date"), first("originaldate")
    original_year = parse_year(original) or parse_year(first("originalyear"))
    track_gain = parse_db(first("replaygain_track_gain"))
    album_gain = parse_db(first("replaygain_album_gain"))
    if track_gain is None:
        track_gain = r128_gain(first("r128_track_gain"))
    if album_gain is None:
        album_gain = r128_gain(first("r128_album_gain"))
    bpm = parse_db(first("bpm"))
    return Tags(
        title=first("title"),
        title_sort=first("titlesort"),
        artists=many("artists") or many("artist", artist_separators),
        artist_sort=first("artistsort"),
        album_artists=many("albumartist", artist_separators),
        album_artist_sort=first("albumartistsort"),
        album=first("album"),
        album_sort=first("albumsort"),
        track_number=parse_number(track),
        track_total=parse_total(track) or parse_number(first("tracktotal")),
        disc_number=parse_number(disc),
        disc_total=parse_total(disc) or parse_number(first("disctotal")),
        disc_subtitle=first("discsubtitle"),
        date=date,
        year=parse_year(date),
        original_date=original,
        original_year=original_year,
        genres=many("genre"),
        compilation=(first("compilation") or "").lower() in _TRUE,
        mb_recording_id=first("musicbrainz_trackid"),
        mb_track_id=first("musicbrainz_releasetrackid"),
        mb_release_id=first("musicbrainz_albumid"),
        mb_release_group_id=first("musicbrainz_releasegroupid"),
        mb_artist_ids=many("musicbrainz_artistid", ("/", ";")),
        mb_album_artist_ids=many("musicbrainz_albumartistid", ("/", ";")),
        rg_track_gain=track_gain,
        rg_track_peak=parse_db(first("replaygain_track_peak")),
        rg_album_gain=album_gain,
        rg_album_peak=parse_db(first("replaygain_album_peak")),
        bpm=bpm if bpm is not None and bpm > 0 else None,
        label=first("label"),
        comment=first("comment"),
    )


# ---------------------------------------------------------------------------------------------
# Reading a file (I/O)


def _id3_frames(tags: Any) -> dict[str, list[str]]:
    frames: dict[str, list[str]] = {}
    for frame in tags.values():
        key = frame.HashKey
        if key.startswith("UFID:"):
            frames[key] = [frame.data.decode("utf-8", "replace")]
        elif key.startswith("TCON"):
            frames[key] = list(frame.genres)
        elif hasattr(frame, "text"):
            frames[key] = [str(t) for t in frame.text]
    return frames


def _mp4_value(value: Any) -> str:
    if isinstance(value, bytes):  # freeform atoms (MP4FreeForm is a bytes subclass)
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple):  # trkn, disk: (number, total)
        number, total = [*value, 0, 0][:2]
        return f"{number}/{total}" if total else str(number)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _mutagen_file(path: Path, container: str, codec: str) -> Any:
    """``path`` parsed by the mutagen class for the format FFmpeg found (mutagen.File would first ask
    every class to score the file, and its MP3 class parses the audio frames too): a ``FileType``, an
    ``ID3`` for MP3, or None when an MP3 has no ID3 tag."""
    import mutagen
    from mutagen import aiff, flac, id3, monkeysaudio, mp4, oggflac, oggopus, oggvorbis, wave, wavpack

    if container == "mp3":
        try:
            return id3.ID3(path)
        except id3.ID3NoHeaderError:
            return None
    if container == "ogg":
        kind = {"opus": oggopus.OggOpus, "vorbis": oggvorbis.OggVorbis, "flac": oggflac.OggFLAC}.get(codec)
    else:
        kind = {"flac": flac.FLAC, "mov": mp4.MP4, "wav": wave.WAVE, "aiff": aiff.AIFF, "wv": wavpack.WavPack,
                "ape": monkeysaudio.MonkeysAudio}.get(container)
    return kind(path) if kind is not None else mutagen.File(path)


def read_file_tags(path: Path, ffmpeg_metadata: Iterable[tuple[str, str]] = (),
                   artist_separators: Sequence[str] = (), container: str = "", codec: str = "") -> Tags:
    """The tags of ``path`` (``read_tags_parsed`` without the parsed file)."""
    return read_tags_parsed(path, ffmpeg_metadata, artist_separators, container, codec)[0]


def read_tags_parsed(path: Path, ffmpeg_metadata: Iterable[tuple[str, str]] = (),
                     artist_separators: Sequence[str] = (), container: str = "",
                     codec: str = "") -> tuple[Tags, Any]:
    """The tags of ``path``, a file FFmpeg found to be of ``container`` (its demuxer's first name) and
    ``codec`` ("" when unknown), and the file as mutagen parsed it (its pictures are read from that:
    one parse per file). ``ffmpeg_metadata`` (PyAV's container and stream metadata) is used for
    files mutagen finds no tags in. Raises TagError when mutagen cannot parse the tags."""
    import mutagen
    from mutagen._vorbis import VComment
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    try:
        parsed = _mutagen_file(path, container, codec)
    except (mutagen.MutagenError, ValueError, struct.error, IndexError, OSError) as exc:
        raise TagError(f"cannot read tags: {exc}") from exc
    tags = parsed if isinstance(parsed, ID3) else getattr(parsed, "tags", None)
    if isinstance(tags, ID3):
        raw = id3_fields(_id3_frames(tags))
    elif isinstance(tags, MP4Tags):
        # Most atoms hold a list; "cpil" and the other flags hold one value.
        raw = mp4_fields({key: [_mp4_value(v) for v in (values if isinstance(values, list) else [values])]
                          for key, values in tags.items()})
    elif isinstance(tags, APEv2):
        raw = loose_fields((key, str(value)) for key, value in tags.items())
    elif isinstance(tags, VComment):  # FLAC, Ogg Vorbis/Opus/FLAC
        raw = loose_fields((key, value) for key, value in tags if isinstance(value, str))
    else:  # no tags, or a kind not mapped here (ASF, …): FFmpeg's reading
        raw = loose_fields(ffmpeg_metadata)
    return tags_from_fields(raw, artist_separators), parsed
