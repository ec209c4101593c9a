"""Lyrics: a sidecar ``.lrc`` next to the track, or the lyrics in its tags (ID3 SYLT/USLT, Vorbis
LYRICS/UNSYNCEDLYRICS, MP4 ©lyr).

``parse_lrc`` (pure) reads LRC text: ``[mm:ss.xx]`` stamps (several per line allowed), ``[offset:±ms]``
and the metadata tags (``[ar:]``, ``[ti:]``, …); text without stamps is plain lyrics. Which source
wins (``choose_lyrics``): synced before plain, and of two alike the sidecar, which the user put there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger("revenge.lyrics")

MAX_LYRICS_BYTES = 1024 * 1024
_STAMP_RE = re.compile(r"\[(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_TAG_RE = re.compile(r"\[([A-Za-z#]+):([^\]]*)\]\s*$")
_OFFSET_RE = re.compile(r"[+-]?\d{1,7}")

_TXXX_LYRICS = frozenset({"uslt", "lyrics", "unsyncedlyrics", "unsynced lyrics", "syncedlyrics"})

LyricsSource = Literal["sidecar", "embedded"]


@dataclass(frozen=True, slots=True)
class Line:
    start_ms: int | None  # None for plain lyrics
    text: str


@dataclass(frozen=True, slots=True)
class Lyrics:
    synced: bool
    lines: tuple[Line, ...]
    source: LyricsSource = "embedded"
    language: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # LRC tags: ar, ti, al, by, length, …


def _stamp_ms(minutes: str, seconds: str, fraction: str | None) -> int:
    ms = (int(minutes) * 60 + int(seconds)) * 1000
    if fraction:
        ms += int(fraction.ljust(3, "0")[:3])  # ".5" is 500 ms, ".05" is 50, ".050" is 50
    return ms


def parse_lrc(text: str, source: LyricsSource = "embedded") -> Lyrics | None:
    """Lyrics from LRC (or plain) text; None when there is no text at all.

    Stamped lines come out sorted by time, a line with several stamps once per stamp; ``[offset:+N]``
    makes every line start N ms earlier (the LRC convention), never before 0. Text with no stamp at
    all is plain lyrics, one line per line (blank lines kept inside, trimmed at the ends)."""
    text = text.lstrip("\ufeff")
    synced: list[tuple[int, int, str]] = []
    plain: list[str] = []
    metadata: dict[str, str] = {}
    offset = 0
    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        stamps: list[int] = []
        position = 0
        while match := _STAMP_RE.match(line, position):
            stamps.append(_stamp_ms(*match.groups()))
            position = match.end()
        if stamps:
            words = line[position:].strip()
            synced.extend((ms, number, words) for ms in stamps)
            continue
        tag = _TAG_RE.fullmatch(line)
        if tag is not None:
            key, value = tag.group(1).lower(), tag.group(2).strip()
            if key == "offset":
                if _OFFSET_RE.fullmatch(value):
                    offset = int(value)
            else:
                metadata[key] = value
            continue
        plain.append(raw.rstrip())
    if synced:
        synced.sort()
        lines = tuple(Line(max(0, ms - offset), words) for ms, _, words in synced)
        return Lyrics(True, lines, source, metadata=metadata)
    while plain and not plain[0].strip():
        plain.pop(0)
    while plain and not plain[-1].strip():
        plain.pop()
    if not plain:
        return None
    return Lyrics(False, tuple(Line(None, t) for t in plain), source, metadata=metadata)


def choose_lyrics(candidates: Sequence[Lyrics]) -> Lyrics | None:
    """Synced before plain; of two alike, the first given (callers list the sidecar first)."""
    for lyrics in candidates:
        if lyrics.synced:
            return lyrics
    return candidates[0] if candidates else None


# ------------------------------------------------------------------------------------------------
# I/O


def sidecar_path(audio: Path) -> Path:
    return audio.with_suffix(".lrc")


def _read_text(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_LYRICS_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_LYRICS_BYTES:
        return None
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # old LRC files from Windows tools


def embedded_lyrics(path: Path) -> list[Lyrics]:
    """The lyrics in a file's tags, synced ones first. Unreadable tags: none."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except Exception as exc:
        log.debug("no tags read from %s: %s", path, exc)
        return []
    tags = getattr(audio, "tags", None)
    if tags is None:
        return []
    found: list[Lyrics] = []
    try:
        if hasattr(tags, "getall"):  # ID3
            for frame in tags.getall("SYLT"):
                lines = sorted((int(ms), str(words).strip()) for words, ms in frame.text)
                if frame.format == 2 and lines:  # milliseconds (format 1 is MPEG frames: unusable here)
                    found.append(Lyrics(True, tuple(Line(ms, w) for ms, w in lines),
                                        language=_language(frame.lang)))
            for frame in tags.getall("USLT"):
                parsed = parse_lrc(str(frame.text))
                if parsed is not None:
                    found.append(Lyrics(parsed.synced, parsed.lines, language=_language(frame.lang),
                                        metadata=parsed.metadata))
            for frame in tags.getall("TXXX"):  # FFmpeg writes ``-metadata lyrics=`` as TXXX:USLT
                if frame.desc.strip().lower() in _TXXX_LYRICS:
                    parsed = parse_lrc("\n".join(str(t) for t in frame.text))
                    if parsed is not None:
                        found.append(parsed)
        elif type(tags).__name__ == "MP4Tags":
            for text in tags.get("\xa9lyr", ()):
                if (parsed := parse_lrc(str(text))) is not None:
                    found.append(parsed)
        else:  # Vorbis comments; LYRICS often holds LRC text with stamps
            for key in ("lyrics", "unsyncedlyrics", "unsynced lyrics"):
                for text in tags.get(key, ()) or ():
                    if (parsed := parse_lrc(str(text))) is not None:
                        found.append(parsed)
    except Exception as exc:
        log.debug("lyrics of %s unreadable: %s", path, exc)
    found.sort(key=lambda lyrics: not lyrics.synced)
    return found


def _language(code: object) -> str | None:
    text = str(code or "").strip()
    return text if text and text.lower() not in ("xxx", "und") else None


def find_lyrics(audio: Path) -> Lyrics | None:
    """The lyrics of one audio file: its ``.lrc`` sidecar and its tags, by ``choose_lyrics``."""
    candidates: list[Lyrics] = []
    text = _read_text(sidecar_path(audio))
    if text is not None and (parsed := parse_lrc(text, "sidecar")) is not None:
        candidates.append(parsed)
    candidates.extend(embedded_lyrics(audio))
    return choose_lyrics(candidates)
