"""The Last.fm protocol (Audioscrobbler 2.0): signed requests and the meaning of answers as pure
functions, and a thin client making the calls.

Every call is a form POST to the API URL with ``method``, ``api_key``, ``api_sig`` and ``format=json``;
``api_sig`` is the md5 of the parameters sorted by name, each name followed by its value (``format`` and
``callback`` left out), then the shared secret. Web auth: ``auth.getToken`` → the user authorises that
token at ``{auth_url}/?api_key=…&token=…`` → ``auth.getSession`` gives the session key (``sk``) that
signs ``track.scrobble`` (up to 50 per call) and ``track.updateNowPlaying``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from revenge.scrobblers.model import (
    InvalidCredentials,
    Outcome,
    ServiceUnavailable,
    TrackMeta,
    retry_after_header,
    short_error,
)

MAX_SCROBBLES_PER_REQUEST = 50
_UNSIGNED = frozenset({"format", "callback"})
# Error codes (https://www.last.fm/api/errorcodes) by what the forwarder does about them.
AUTH_ERRORS = frozenset({4, 9, 10, 13, 14, 15, 26})  # bad token/session/key/signature, suspended key
REFUSED_ERRORS = frozenset({6, 7})  # invalid parameters / resource: this request will never pass
TOKEN_ERRORS = frozenset({4, 14, 15})  # auth.getSession: the token is invalid, not authorised, expired
# Per-scrobble "ignoredMessage" codes: 1 artist, 2 track ignored, 3 too old, 4 too new; 5 daily limit.
_IGNORED = {"1": "Last.fm ignored the artist", "2": "Last.fm ignored the track",
            "3": "Last.fm: the timestamp is too old", "4": "Last.fm: the timestamp is too new"}
DAILY_LIMIT = "5"


def signature(params: Mapping[str, str], secret: str) -> str:
    text = "".join(f"{name}{params[name]}" for name in sorted(params) if name not in _UNSIGNED)
    return hashlib.md5((text + secret).encode(), usedforsecurity=False).hexdigest()


def signed(params: Mapping[str, str], api_key: str, secret: str) -> dict[str, str]:
    """``params`` with ``api_key``, ``api_sig`` and ``format=json``: the form to POST."""
    form = {**params, "api_key": api_key}
    form["api_sig"] = signature(form, secret)
    form["format"] = "json"
    return form


def _track_params(meta: TrackMeta, suffix: str = "") -> dict[str, str]:
    params = {f"artist{suffix}": meta.artist, f"track{suffix}": meta.track}
    if meta.album:
        params[f"album{suffix}"] = meta.album
    if meta.album_artist and meta.album_artist != meta.artist:
        params[f"albumArtist{suffix}"] = meta.album_artist
    if meta.duration_ms is not None:
        params[f"duration{suffix}"] = str(round(meta.duration_ms / 1000))
    if meta.track_number is not None:
        params[f"trackNumber{suffix}"] = str(meta.track_number)
    if meta.recording_mbid:
        params[f"mbid{suffix}"] = meta.recording_mbid
    return params


def scrobble_params(session_key: str, entries: Sequence[tuple[int, TrackMeta]]) -> dict[str, str]:
    """``(timestamp seconds, metadata)`` entries as one ``track.scrobble`` (unsigned yet)."""
    if not 1 <= len(entries) <= MAX_SCROBBLES_PER_REQUEST:
        raise ValueError(f"1..{MAX_SCROBBLES_PER_REQUEST} scrobbles per request, got {len(entries)}")
    params = {"method": "track.scrobble", "sk": session_key}
    for index, (timestamp, meta) in enumerate(entries):
        params.update(_track_params(meta, f"[{index}]"))
        params[f"timestamp[{index}]"] = str(timestamp)
    return params


def now_playing_params(session_key: str, meta: TrackMeta) -> dict[str, str]:
    return {"method": "track.updateNowPlaying", "sk": session_key, **_track_params(meta)}


def auth_url(base: str, api_key: str, token: str, callback: str | None = None) -> str:
    query = {"api_key": api_key, "token": token}
    if callback:
        query["cb"] = callback
    return f"{base.rstrip('/')}/?{urlencode(query)}"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _error(parsed: Any) -> tuple[int, str] | None:
    if isinstance(parsed, dict) and "error" in parsed:
        try:
            code = int(parsed["error"])
        except (TypeError, ValueError):
            code = -1
        return code, short_error(str(parsed.get("message") or ""))
    return None


def parse_scrobble(status: int, headers: Mapping[str, str], body: bytes, count: int) -> Outcome:
    """What an answer of ``track.scrobble`` (or ``track.updateNowPlaying``: ``count`` 0) means."""
    parsed = _json(body)
    error = _error(parsed)
    if error is not None:
        code, message = error
        text = f"Last.fm error {code}: {message}"
        if code in AUTH_ERRORS:
            return Outcome("auth", text)
        if code in REFUSED_ERRORS:
            return Outcome("refused", text)
        return Outcome("retry", text, retry_after_header(headers))  # 8, 11, 16, 29 and unknown codes
    if status != 200 or not isinstance(parsed, dict):
        return Outcome("retry", f"Last.fm answered {status}", retry_after_header(headers))
    if count == 0:
        return Outcome("ok")
    entries = (parsed.get("scrobbles") or {}).get("scrobble", [])
    if isinstance(entries, dict):  # one scrobble comes as an object, several as a list
        entries = [entries]
    skipped: dict[int, str] = {}
    held: set[int] = set()
    for index, entry in enumerate(entries[:count] if isinstance(entries, list) else []):
        ignored = entry.get("ignoredMessage") if isinstance(entry, dict) else None
        code = str(ignored.get("code", "0")) if isinstance(ignored, dict) else "0"
        if code == DAILY_LIMIT:
            held.add(index)
        elif code != "0":
            skipped[index] = _IGNORED.get(code, f"Last.fm ignored it (code {code})")
    return Outcome("ok", skipped=skipped, held=frozenset(held),
                   retry_after=3600.0 if held else None)  # the daily limit: try again in an hour


def parse_token(status: int, body: bytes) -> str:
    parsed = _json(body)
    token = parsed.get("token") if isinstance(parsed, dict) else None
    if status == 200 and isinstance(token, str) and token:
        return token
    error = _error(parsed)
    raise ServiceUnavailable(f"Last.fm auth.getToken failed: {error[1] if error else status}")


def parse_session(status: int, body: bytes) -> tuple[str, str]:
    """``(user name, session key)``; ``InvalidCredentials`` when the token is invalid, not (yet)
    authorised by the user, or expired."""
    parsed = _json(body)
    error = _error(parsed)
    if error is not None and error[0] in TOKEN_ERRORS:
        raise InvalidCredentials(f"Last.fm: {error[1] or 'the token is not authorised'}")
    session = parsed.get("session") if isinstance(parsed, dict) else None
    if status == 200 and isinstance(session, dict) and isinstance(session.get("key"), str) \
            and isinstance(session.get("name"), str):
        return short_error(session["name"]), session["key"]
    raise ServiceUnavailable(f"Last.fm auth.getSession failed: {error[1] if error else status}")


class LastfmClient:
    """The calls, on the forwarder's HTTP client (its timeouts) and the configured URLs and key."""

    def __init__(self, http: httpx.AsyncClient, api_url: str, api_key: str, secret: str) -> None:
        self._http = http
        self._url = api_url
        self._key = api_key
        self._secret = secret

    def __repr__(self) -> str:
        return f"LastfmClient({self._url!r})"

    async def _post(self, params: Mapping[str, str]) -> httpx.Response:
        # A form POST: the session key and signature never appear in a URL (nor in httpx's request log).
        return await self._http.post(self._url, data=signed(params, self._key, self._secret))

    async def get_token(self) -> str:
        try:
            r = await self._post({"method": "auth.getToken"})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"Last.fm: {type(exc).__name__}") from None
        return parse_token(r.status_code, r.content)

    async def get_session(self, token: str) -> tuple[str, str]:
        try:
            r = await self._post({"method": "auth.getSession", "token": token})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"Last.fm: {type(exc).__name__}") from None
        return parse_session(r.status_code, r.content)

    async def send(self, secret: str, entries: Sequence[tuple[int, TrackMeta]]) -> Outcome:
        try:
            r = await self._post(scrobble_params(secret, entries))
        except httpx.HTTPError as exc:
            return Outcome("retry", f"Last.fm: {type(exc).__name__}")
        return parse_scrobble(r.status_code, r.headers, r.content, len(entries))

    async def now_playing(self, secret: str, meta: TrackMeta) -> Outcome:
        try:
            r = await self._post(now_playing_params(secret, meta))
        except httpx.HTTPError as exc:
            return Outcome("retry", f"Last.fm: {type(exc).__name__}")
        return parse_scrobble(r.status_code, r.headers, r.content, 0)
