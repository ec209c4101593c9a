"""The rules of forwarding, without I/O: what is sent for an item, what is skipped and why, what an
answer means (``Outcome``), how long to wait after a failure, and the link a user keeps per service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from revenge.playback.scrobbles import SERVICES, Scrobble, ServiceName

if TYPE_CHECKING:
    from revenge.library.model import Item
    from revenge.library.tags import Tags

DAY_MS = 86_400_000
LASTFM_MAX_AGE_MS = 14 * DAY_MS  # Last.fm ignores scrobbles older than this (its code 3)
LISTENBRAINZ_MIN_TS = 1_033_430_400  # 2002-10-01: ListenBrainz refuses listens before it (seconds)
MAX_ERROR_CHARS = 300
MAX_RETRY_SECONDS = 6 * 3600  # a Retry-After further out than this is clamped (a buggy or hostile answer)

OutcomeKind = Literal["ok", "retry", "refused", "auth"]


def is_service(value: object) -> bool:
    return value in SERVICES


@dataclass(frozen=True, slots=True)
class TrackMeta:
    """What the services get for one track."""

    artist: str
    track: str
    album: str | None = None
    album_artist: str | None = None
    duration_ms: int | None = None
    track_number: int | None = None
    recording_mbid: str | None = None
    release_mbid: str | None = None
    artist_mbids: tuple[str, ...] = ()


def _mbid(value: object) -> str | None:
    """A MusicBrainz id in canonical form, or ``None`` (the services refuse a malformed one)."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def track_meta(item: Item, tags: Tags | None = None) -> TrackMeta | None:
    """The metadata of a track; ``None`` when it cannot be scrobbled (not a track, no artist or title).
    MusicBrainz ids (recording, release, artists) come from the track's ``tags`` when it has them."""
    artist = (item.artist or item.album_artist or "").strip()
    title = item.title.strip()
    if item.type != "track" or not artist or not title:
        return None
    raw_artists = tags.mb_artist_ids if tags is not None else ()
    artist_mbids = tuple(m for m in (_mbid(a) for a in raw_artists) if m is not None)
    return TrackMeta(
        artist=artist, track=title, album=(item.album or "").strip() or None,
        album_artist=(item.album_artist or "").strip() or None,
        duration_ms=item.duration_ms if item.duration_ms > 0 else None, track_number=item.track_number,
        recording_mbid=_mbid(tags.mb_recording_id if tags is not None else None),
        release_mbid=_mbid(tags.mb_release_id if tags is not None else None), artist_mbids=artist_mbids,
    )


def skip_reason(service: ServiceName, record: Scrobble, meta: TrackMeta | None, now_ms: int) -> str | None:
    """Why ``record`` is not sent to ``service`` at all (it leaves the outbox as skipped), or ``None``."""
    if meta is None:
        return "the item is gone from the library or has no artist or title"
    if service == "lastfm" and record.started_at < now_ms - LASTFM_MAX_AGE_MS:
        return "older than Last.fm accepts (14 days)"
    if service == "listenbrainz" and record.started_at // 1000 < LISTENBRAINZ_MIN_TS:
        return "older than ListenBrainz accepts (2002-10-01)"
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a service made of a request.

    * ``ok``: accepted; ``skipped`` names the entries (by index) it ignored, with the reason, ``held``
      those it neither took nor refused (Last.fm's daily limit): they stay queued. ``retry_after``, when
      set, is how long the service wants us to wait before the next request (rate limit headers).
    * ``retry``: a transient failure (down, 5xx, 429, timeout); nothing was accepted, try again after
      ``retry_after`` or the backoff.
    * ``refused``: the request itself was refused (400): one entry is skipped, several are split.
    * ``auth``: the token or session key is not valid (any more): forwarding stops until linked again.
    """

    kind: OutcomeKind
    message: str = ""
    retry_after: float | None = None
    skipped: Mapping[int, str] = field(default_factory=dict)
    held: frozenset[int] = frozenset()


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (delta seconds; an HTTP date is not worth parsing here) or
    ListenBrainz's ``X-RateLimit-Reset-In``; ``None`` when neither is a number."""
    for name in ("retry-after", "x-ratelimit-reset-in"):
        raw = headers.get(name)
        if raw is not None and re.fullmatch(r"\s*[0-9]{1,9}(\.[0-9]+)?\s*", raw):
            return min(float(raw), MAX_RETRY_SECONDS)
    return None


def rate_limit_pause(headers: Mapping[str, str]) -> float | None:
    """After a success: the wait ListenBrainz asks for when its window is used up
    (``X-RateLimit-Remaining: 0``), else ``None``."""
    if (headers.get("x-ratelimit-remaining") or "").strip() == "0":
        return retry_after_header({"x-ratelimit-reset-in": headers.get("x-ratelimit-reset-in", "")})
    return None


def backoff_seconds(failures: int, base: float, rand: float, retry_after: float | None = None,
                    cap: float = 3600.0) -> float:
    """The wait before the next try after ``failures`` (≥ 1) failures in a row: exponential from
    ``base``, capped, with "equal jitter" (half fixed, half random by ``rand`` in [0, 1)) so instances
    that failed together do not retry together; never shorter than the service's ``retry_after``."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 30))
    wait = ceiling / 2 + rand * ceiling / 2
    return max(wait, min(retry_after, MAX_RETRY_SECONDS)) if retry_after is not None else wait


def short_error(message: str) -> str:
    """An error as stored and shown: one line, bounded."""
    return " ".join(message.split())[:MAX_ERROR_CHARS]


# --- links -----------------------------------------------------------------------------------------

LinkState = Literal["unlinked", "active", "stopped"]


@dataclass(frozen=True, slots=True)
class Link:
    """One user's account at one service. ``secret`` is sealed (``revenge.security.crypto``);
    ``stopped`` holds the permanent error that stopped forwarding until the user links again;
    ``last_error`` the latest error of any kind (cleared by a success)."""

    user_id: str
    service: ServiceName
    account: str
    secret: str
    linked_at: int
    stopped: str | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    last_sent_at: int | None = None

    @property
    def state(self) -> LinkState:
        return "stopped" if self.stopped is not None else "active"


def secret_context(user_id: str, service: str) -> str:
    """What a sealed secret is bound to: its user and service."""
    return f"revenge-scrobbler:{service}:{user_id}"


def link_json(service: ServiceName, link: Link | None, outbox: int, configured: bool) -> dict[str, Any]:
    """A link as ``GET /api/v1/me/scrobblers`` shows it: never the secret."""
    error = None
    if link is not None and link.last_error is not None:
        error = {"message": link.last_error, "at": link.last_error_at, "permanent": link.stopped is not None}
    return {
        "service": service, "configured": configured,
        "state": "unlinked" if link is None else link.state,
        "account": None if link is None else link.account,
        "linked_at": None if link is None else link.linked_at,
        "last_sent_at": None if link is None else link.last_sent_at,
        "outbox": outbox, "last_error": error,
    }


class InvalidCredentials(Exception):
    """The service says the token (or the Last.fm web-auth token) is not valid."""


class ServiceUnavailable(Exception):
    """The service could not be reached or failed; nothing was decided."""


CLIENT_NAME = "Revenge audio"
