"""A podcast feed's bytes → ``Feed`` with its episodes. Pure: no I/O.

``feedparser`` reads the feed (RSS 2.0 with the iTunes tags, Atom, the broken feeds of the real world:
it is lenient where ``podcastparser`` drops a whole feed, and it reads ``psc:chapters`` and the
``podcast:`` namespace). It is never handed a document that declares entities: ``refuse_entities`` runs
first, with ``defusedxml``, so an entity-expansion bomb is refused before anything expands it.
"""

from __future__ import annotations

import calendar
import io
import re
from dataclasses import dataclass
from typing import Any

import defusedxml
import defusedxml.ElementTree
import feedparser
import orjson

MAX_TEXT = 20_000  # longest description kept (show notes can be huge HTML)
MAX_URL = 4000


class FeedError(Exception):
    """The document is not a feed we take; the message says why (shown to the admin)."""


@dataclass(frozen=True, slots=True)
class Chapter:
    start_seconds: float
    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class FeedEpisode:
    guid: str
    title: str
    description: str
    published: float | None  # Unix seconds, UTC
    duration_seconds: float | None
    enclosure_url: str
    enclosure_type: str | None
    enclosure_length: int | None
    season: int | None
    episode: int | None
    image: str | None
    chapters: tuple[Chapter, ...]
    chapters_url: str | None  # podcast:chapters (JSON chapters, read when the episode is downloaded)


@dataclass(frozen=True, slots=True)
class Feed:
    title: str
    description: str
    image: str | None
    link: str | None
    episodes: tuple[FeedEpisode, ...]


def refuse_entities(data: bytes) -> None:
    """``FeedError`` when the XML declares entities or references external ones (billion laughs, XXE).
    A document that is not well-formed is left to feedparser's lenient parser, which expands nothing."""
    try:
        defusedxml.ElementTree.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise FeedError(f"the document declares XML entities ({type(exc).__name__}): refused") from None
    except Exception:
        return


_CLOCK_RE = re.compile(r"^(?:(\d+):)?(\d{1,3}):(\d{1,2}(?:\.\d+)?)$")


def parse_clock(text: str | None) -> float | None:
    """Seconds from "1:02:03", "62:03", "3723", "3723.5", "00:01:30.500"; None for anything else."""
    if text is None:
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        match = _CLOCK_RE.match(text)
        if match is None:
            return None
        hours, minutes, seconds = match.groups()
        value = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    return value if 0 <= value < 10**8 else None


def _int(text: Any) -> int | None:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 2**31 else None


def _text(value: Any) -> str:
    return str(value or "").strip()[:MAX_TEXT]


def _image(node: Any) -> str | None:
    image = node.get("image")
    if isinstance(image, dict):
        href = image.get("href") or image.get("url")
        return str(href) if href else None
    return None


def _enclosure(entry: Any) -> dict[str, Any] | None:
    for link in entry.get("links", ()):
        if link.get("rel") == "enclosure" and link.get("href"):
            return dict(link)
    return None


def _psc_chapters(entry: Any) -> tuple[Chapter, ...]:
    chapters = []
    for raw in (entry.get("psc_chapters") or {}).get("chapters", ()):
        start = parse_clock(raw.get("start"))
        if start is not None:
            chapters.append(Chapter(start, _text(raw.get("title")), raw.get("href") or None))
    return tuple(sorted(chapters, key=lambda c: c.start_seconds))


def parse_json_chapters(data: bytes) -> tuple[Chapter, ...]:
    """The podcast namespace's JSON chapters (``{"chapters": [{"startTime", "title", "url"?}]}``);
    entries marked ``toc: false`` are not chapters of the table of contents and are left out."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"chapters are not JSON: {exc}") from None
    raw = doc.get("chapters") if isinstance(doc, dict) else None
    if not isinstance(raw, list):
        raise FeedError("chapters JSON has no chapters list")
    chapters = []
    for entry in raw:
        if not isinstance(entry, dict) or entry.get("toc") is False:
            continue
        start = entry.get("startTime")
        if isinstance(start, int | float) and not isinstance(start, bool) and start >= 0:
            url = entry.get("url")
            chapters.append(
                Chapter(float(start), _text(entry.get("title")), url if isinstance(url, str) else None)
            )
    return tuple(sorted(chapters, key=lambda c: c.start_seconds))


def _episode(entry: Any) -> FeedEpisode | None:
    enclosure = _enclosure(entry)
    if enclosure is None:
        return None  # an item without media is a blog post, not an episode
    url = str(enclosure["href"]).strip()
    if len(url) > MAX_URL:
        return None  # no real host needs it; the row and every answer listing it would carry it
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    chapters_ref = entry.get("podcast_chapters")
    chapters_url = chapters_ref.get("url") if isinstance(chapters_ref, dict) else None
    return FeedEpisode(
        guid=_text(entry.get("id"))[:1000] or url,
        title=_text(entry.get("title")) or url.rsplit("/", 1)[-1],
        description=_text(entry.get("summary")),
        published=float(calendar.timegm(published)) if published else None,
        duration_seconds=parse_clock(entry.get("itunes_duration")),
        enclosure_url=url,
        enclosure_type=enclosure.get("type") or None,
        enclosure_length=_int(enclosure.get("length")),
        season=_int(entry.get("itunes_season")),
        episode=_int(entry.get("itunes_episode")),
        image=_image(entry),
        chapters=_psc_chapters(entry),
        chapters_url=str(chapters_url) if chapters_url else None,
    )


def parse_feed(data: bytes) -> Feed:
    """The feed in ``data``; ``FeedError`` when it declares entities or holds neither a title nor an episode.
    An episode listed twice under one GUID counts once (the first, as the feed orders them)."""
    refuse_entities(data)
    # A stream, never the bytes themselves: feedparser opens a bytes or str argument as a file name when
    # it can, so a host answering "/etc/…" would have the server read its own files.
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    episodes: list[FeedEpisode] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        episode = _episode(entry)
        if episode is not None and episode.guid not in seen:
            seen.add(episode.guid)
            episodes.append(episode)
    title = _text(parsed.feed.get("title"))[:500]
    if not title and not episodes:
        reason = getattr(parsed, "bozo_exception", None)
        raise FeedError(f"not a podcast feed{f': {reason}' if reason else ''}")
    return Feed(
        title=title or "Untitled podcast",
        description=_text(parsed.feed.get("subtitle")),
        image=_image(parsed.feed),
        link=parsed.feed.get("link") or None,
        episodes=tuple(episodes),
    )
