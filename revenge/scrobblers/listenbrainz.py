"""The ListenBrainz protocol (also spoken by Maloja, Koito and other compatible services): request
bodies and the meaning of answers as pure functions, and a thin client making the calls.

``GET /1/validate-token`` and ``POST /1/submit-listens`` with ``Authorization: Token <user token>``;
bodies ``{"listen_type": "single" | "import" | "playing_now", "payload": [...]}`` with ``listened_at``
in seconds (none for ``playing_now``). Rate limits: ``X-RateLimit-Remaining`` / ``-Reset-In``, 429.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from revenge import __version__
from revenge.scrobblers.model import (
    CLIENT_NAME,
    InvalidCredentials,
    Outcome,
    ServiceUnavailable,
    TrackMeta,
    rate_limit_pause,
    retry_after_header,
    short_error,
)

MAX_LISTENS_PER_REQUEST = 1000  # the service's limit for an "import"


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", "Content-Type": "application/json"}


def listen_json(meta: TrackMeta, listened_at: int | None) -> dict[str, Any]:
    """One listen of the payload; ``listened_at`` is unix seconds (the listen's start), ``None`` for
    "playing now"."""
    info: dict[str, Any] = {"submission_client": CLIENT_NAME, "submission_client_version": __version__}
    if meta.duration_ms is not None:
        info["duration_ms"] = meta.duration_ms
    if meta.track_number is not None:
        info["tracknumber"] = meta.track_number
    if meta.recording_mbid:
        info["recording_mbid"] = meta.recording_mbid
    if meta.release_mbid:
        info["release_mbid"] = meta.release_mbid
    if meta.artist_mbids:
        info["artist_mbids"] = list(meta.artist_mbids)
    track: dict[str, Any] = {"artist_name": meta.artist, "track_name": meta.track, "additional_info": info}
    if meta.album:
        track["release_name"] = meta.album
    listen: dict[str, Any] = {"track_metadata": track}
    if listened_at is not None:
        listen["listened_at"] = listened_at
    return listen


def submit_body(entries: Sequence[tuple[int, TrackMeta]]) -> dict[str, Any]:
    """``(listened_at seconds, metadata)`` entries as one request: "single" for one, "import" for more."""
    if not 1 <= len(entries) <= MAX_LISTENS_PER_REQUEST:
        raise ValueError(f"1..{MAX_LISTENS_PER_REQUEST} listens per request, got {len(entries)}")
    return {"listen_type": "single" if len(entries) == 1 else "import",
            "payload": [listen_json(meta, at) for at, meta in entries]}


def playing_now_body(meta: TrackMeta) -> dict[str, Any]:
    return {"listen_type": "playing_now", "payload": [listen_json(meta, None)]}


def _error_text(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return short_error(body[:200].decode("utf-8", "replace"))
    if isinstance(parsed, dict):
        return short_error(str(parsed.get("error") or parsed.get("message") or parsed))
    return short_error(str(parsed))


def parse_submit(status: int, headers: Mapping[str, str], body: bytes) -> Outcome:
    """What an answer of ``submit-listens`` means."""
    if status == 200:
        return Outcome("ok", retry_after=rate_limit_pause(headers))
    message = f"ListenBrainz answered {status}: {_error_text(body)}"
    if status == 401:
        return Outcome("auth", message)
    if status == 400:
        return Outcome("refused", message)
    return Outcome("retry", message, retry_after_header(headers))  # 429, 5xx, anything unexpected


def parse_validate(status: int, body: bytes) -> str:
    """The user name of a valid token; ``InvalidCredentials`` when the service says it is not valid,
    ``ServiceUnavailable`` for any other answer."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if status == 200 and isinstance(parsed, dict):
        if parsed.get("valid") is True and isinstance(parsed.get("user_name"), str):
            return short_error(parsed["user_name"])
        if parsed.get("valid") is False:
            raise InvalidCredentials(short_error(str(parsed.get("message") or "the token is not valid")))
    if status in (400, 401):
        raise InvalidCredentials("the token is not valid")
    raise ServiceUnavailable(f"ListenBrainz answered {status} to the token check")


class ListenBrainzClient:
    """The calls, on the forwarder's HTTP client (its timeouts) and the configured base URL."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def validate(self, token: str) -> str:
        try:
            r = await self._http.get(f"{self._base}/1/validate-token", headers=headers(token))
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"ListenBrainz: {type(exc).__name__}") from None
        return parse_validate(r.status_code, r.content)

    async def _post(self, token: str, body: dict[str, Any]) -> Outcome:
        try:
            r = await self._http.post(f"{self._base}/1/submit-listens", headers=headers(token),
                                      content=orjson.dumps(body))
        except httpx.HTTPError as exc:
            return Outcome("retry", f"ListenBrainz: {type(exc).__name__}")
        return parse_submit(r.status_code, r.headers, r.content)

    async def send(self, secret: str, entries: Sequence[tuple[int, TrackMeta]]) -> Outcome:
        return await self._post(secret, submit_body(entries))

    async def now_playing(self, secret: str, meta: TrackMeta) -> Outcome:
        return await self._post(secret, playing_now_body(meta))
