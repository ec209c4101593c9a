"""Ids of subscriptions and episodes, and where a downloaded episode lives in the podcast folder. Pure."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import unicodedata
from urllib.parse import urlsplit

from revenge.library.media_types import is_audio_name

ID_RE = re.compile(r"[a-z2-7]{16}")

_TYPE_SUFFIX = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
}
_UNSAFE_RE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def short_id(*parts: str) -> str:
    """16 lowercase base32 characters of SHA-256 over ``parts`` (the item ids' shape)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def podcast_id(feed_url: str) -> str:
    return short_id("podcast", feed_url)


def episode_id(podcast: str, guid: str) -> str:
    return short_id("episode", podcast, guid)


def safe_name(text: str, limit: int = 120) -> str:
    """A file or folder name from a title: no separators or control characters, not hidden, not empty."""
    name = _UNSAFE_RE.sub(" ", unicodedata.normalize("NFC", text))
    name = " ".join(name.split()).strip(". ")[:limit].strip(". ")
    return name or "untitled"


def audio_suffix(url: str, mime: str | None) -> str:
    """The enclosure's extension: the URL path's when it is an audio one, else the MIME type's, else .mp3."""
    path = urlsplit(url).path.rsplit("/", 1)[-1]
    if is_audio_name(path):
        return path[path.rfind(".") :].lower()
    return _TYPE_SUFFIX.get((mime or "").split(";", 1)[0].strip().lower(), ".mp3")


def episode_file_name(title: str, published: float | None, suffix: str, episode: str) -> str:
    """``2026-12-01 Title [id6].mp3``: dated so a show's folder sorts by date, with the start of the
    episode id so two episodes of one title never share a file."""
    date = time.strftime("%Y-%m-%d ", time.gmtime(published)) if published is not None else ""
    return f"{date}{safe_name(title, 100)} [{episode[:6]}]{suffix}"
