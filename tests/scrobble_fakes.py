"""Local stand-ins for ListenBrainz and Last.fm, served by uvicorn on a loopback port, that check the
forwarder's requests the way the real services do:

* ListenBrainz: ``GET /1/validate-token``; ``POST /1/submit-listens`` with ``Authorization: Token``, the
  JSON schema checks of the real server (listen_type, payload sizes, ``listened_at`` after 2002-10-01
  and absent for ``playing_now``, artist/track names, MusicBrainz ids as UUIDs, 10 240 bytes a listen)
  and the rate-limit headers; listens deduplicated on (user, listened_at, track name).
* Last.fm: ``POST /2.0/`` forms with ``api_sig`` verified (md5 of the sorted parameters, ``format`` and
  ``callback`` left out, then the shared secret; computed here independently), the web-auth methods,
  ``track.scrobble`` (1..50 indexed entries, 14 days at most in the past, deduplicated on (user,
  timestamp, artist, track)) and ``track.updateNowPlaying``.

Faults are queued per service (``faults.append(...)``) and apply to the next submit calls: ``"down"``
(503), ``"429"`` (with ``Retry-After`` and rate-limit headers), ``"401"`` / ``"badsession"``, ``"slow"``
(store, then answer after ``slow_seconds``: a client that timed out will resend), ``"hang"`` (store,
then never answer: for killing the server mid-batch). ``restart()`` kills the server (open connections
die) and starts it again on the same port; the recorded state survives, as a real service's would.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LISTEN_MINIMUM_TS = 1_033_430_400
MAX_LISTEN_SIZE = 10_240
MAX_LISTENS_PER_REQUEST = 1000
LASTFM_MAX_AGE_S = 14 * 86_400


@dataclass
class Calls:
    """What a fake saw and did: for the tests' assertions."""

    submits: int = 0  # submit calls that reached the handler (including refused and faulted ones)
    accepted_batches: list[list[Any]] = field(default_factory=list)
    duplicates: int = 0
    now_playing: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    refused: list[str] = field(default_factory=list)


class FakeListenBrainz:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}  # token → user name
        self.refuse_tracks: set[str] = set()  # a batch holding one of these track names is a 400
        self.listens: dict[str, dict[tuple[int, str], dict[str, Any]]] = {}
        self.faults: deque[str] = deque()
        self.slow_seconds = 0.0
        self.retry_after = 1
        self.calls = Calls()
        self.hung = threading.Event()  # set when a "hang" fault has stored its batch

    def add_user(self, name: str) -> str:
        token = str(uuid.uuid4())
        self.tokens[token] = name
        return token

    def stored(self, user: str) -> list[dict[str, Any]]:
        return sorted(self.listens.get(user, {}).values(), key=lambda listen: listen["listened_at"])

    def _user(self, request: Request) -> str | None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        return self.tokens.get(token.strip()) if scheme.lower() == "token" else None

    async def validate(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return JSONResponse({"code": 200, "message": "Token invalid.", "valid": False})
        return JSONResponse({"code": 200, "message": "Token valid.", "valid": True, "user_name": user})

    async def submit(self, request: Request) -> Response:
        self.calls.submits += 1
        self.calls.in_flight += 1
        self.calls.max_in_flight = max(self.calls.max_in_flight, self.calls.in_flight)
        try:
            return await self._submit(request)
        finally:
            self.calls.in_flight -= 1

    async def _submit(self, request: Request) -> Response:
        fault = self.faults.popleft() if self.faults else None
        if fault == "down":
            return JSONResponse({"code": 503, "error": "down for maintenance"}, status_code=503)
        if fault == "429":
            return JSONResponse({"code": 429, "error": "rate limit"}, status_code=429, headers={
                "Retry-After": str(self.retry_after), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-In": str(self.retry_after), "X-RateLimit-Limit": "30"})
        user = self._user(request)
        if user is None or fault == "401":
            return JSONResponse({"code": 401, "error": "Invalid authorization token."}, status_code=401)
        try:
            body = orjson.loads(await request.body())
            listens = check_submission(body)
            poisoned = [x for x in listens if x["track_metadata"]["track_name"] in self.refuse_tracks]
            if poisoned:
                raise ValueError(f"refused track {poisoned[0]['track_metadata']['track_name']}")
        except (orjson.JSONDecodeError, ValueError) as exc:
            self.calls.refused.append(str(exc))
            return JSONResponse({"code": 400, "error": str(exc)}, status_code=400)
        if body["listen_type"] == "playing_now":
            self.calls.now_playing.append(listens[0])
            return JSONResponse({"status": "ok"})
        mine = self.listens.setdefault(user, {})
        for listen in listens:
            key = (listen["listened_at"], listen["track_metadata"]["track_name"])
            if key in mine:
                self.calls.duplicates += 1
            mine[key] = listen
        self.calls.accepted_batches.append(listens)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        if fault == "hang":
            self.hung.set()
            await asyncio.Event().wait()  # until the server is killed
        return JSONResponse({"status": "ok"}, headers={"X-RateLimit-Remaining": "29",
                                                       "X-RateLimit-Reset-In": "10"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/1/validate-token", self.validate, methods=["GET"]),
                                 Route("/1/submit-listens", self.submit, methods=["POST"])])


def _is_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def check_submission(body: Any) -> list[dict[str, Any]]:
    """The real server's checks of a submit-listens body (listenbrainz.webserver.views.api_tools)."""
    if not isinstance(body, dict) or set(body) - {"listen_type", "payload"}:
        raise ValueError("Invalid JSON document submitted.")
    listen_type = body.get("listen_type")
    if listen_type not in ("single", "import", "playing_now"):
        raise ValueError("JSON document requires a valid listen_type key.")
    payload = body.get("payload")
    if not isinstance(payload, list) or not payload:
        raise ValueError("JSON document does not contain any listens.")
    if listen_type in ("single", "playing_now") and len(payload) != 1:
        raise ValueError(f"JSON document should contain exactly one listen for listen_type {listen_type}.")
    if len(payload) > MAX_LISTENS_PER_REQUEST:
        raise ValueError("Too many listens.")
    for listen in payload:
        if not isinstance(listen, dict) or set(listen) - {"listened_at", "track_metadata"}:
            raise ValueError("Invalid listen: unexpected keys")
        if len(orjson.dumps(listen)) > MAX_LISTEN_SIZE:
            raise ValueError("JSON document is too large.")
        if listen_type == "playing_now":
            if "listened_at" in listen:
                raise ValueError("JSON document should not contain listened_at for playing_now.")
        else:
            at = listen.get("listened_at")
            if not isinstance(at, int) or isinstance(at, bool):
                raise ValueError("JSON document must contain integer listened_at.")
            if at < LISTEN_MINIMUM_TS:
                raise ValueError("Value for key listened_at is too low.")
        meta = listen.get("track_metadata")
        if not isinstance(meta, dict):
            raise ValueError("JSON document must contain track_metadata.")
        for key in ("artist_name", "track_name"):
            if not isinstance(meta.get(key), str) or not meta[key].strip():
                raise ValueError(f"JSON document does not contain required track_metadata.{key}.")
        if "release_name" in meta and not isinstance(meta["release_name"], str):
            raise ValueError("release_name must be a string.")
        info = meta.get("additional_info", {})
        if not isinstance(info, dict):
            raise ValueError("additional_info must be an object.")
        for key in ("recording_mbid", "release_mbid"):
            if key in info and not _is_uuid(info[key]):
                raise ValueError(f"{key} is not a valid UUID.")
        if "artist_mbids" in info and not (isinstance(info["artist_mbids"], list)
                                           and all(_is_uuid(m) for m in info["artist_mbids"])):
            raise ValueError("artist_mbids must be a list of UUIDs.")
        if "duration_ms" in info and not (isinstance(info["duration_ms"], int) and info["duration_ms"] > 0):
            raise ValueError("duration_ms must be a positive integer.")
    return payload


def lastfm_signature(form: dict[str, str], secret: str) -> str:
    """Written apart from the client's: the documented rule, step by step."""
    names = sorted(name for name in form if name not in ("format", "callback", "api_sig"))
    text = ""
    for name in names:
        text += name + form[name]
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


_INDEXED = re.compile(r"([A-Za-z]+)\[([0-9]+)\]")


class FakeLastfm:
    def __init__(self, api_key: str = "k" * 32, secret: str = "s" * 32) -> None:
        self.api_key = api_key
        self.secret = secret
        self.tokens: dict[str, str | None] = {}  # issued web-auth token → the user who authorised it
        self.sessions: dict[str, str] = {}  # session key → user name
        self.scrobbles: dict[str, dict[tuple[int, str, str], dict[str, str]]] = {}
        self.faults: deque[str] = deque()
        self.slow_seconds = 0.0
        self.retry_after = 1
        self.calls = Calls()
        self.hung = threading.Event()
        self.now = time.time  # the service's clock (14 days are counted from it)

    def authorize(self, token: str, user: str) -> None:
        """What the user does on last.fm's page: allow the application."""
        self.tokens[token] = user

    def session_for(self, user: str) -> str:
        key = secrets.token_hex(16)
        self.sessions[key] = user
        return key

    def stored(self, user: str) -> list[dict[str, str]]:
        return sorted(self.scrobbles.get(user, {}).values(), key=lambda s: int(s["timestamp"]))

    @staticmethod
    def error(code: int, message: str, status: int = 200) -> Response:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    async def api(self, request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return self.error(6, "expected a form body")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True, strict_parsing=False))
        if request.query_params:
            return self.error(6, "parameters go in the POST body")  # the client must not put them in a URL
        if form.get("api_key") != self.api_key:
            return self.error(10, "Invalid API key - You must be granted a valid key by last.fm", 403)
        if form.get("api_sig") != lastfm_signature(form, self.secret):
            return self.error(13, "Invalid method signature supplied", 403)
        method = form.get("method")
        if method == "auth.getToken":
            token = secrets.token_hex(16)
            self.tokens[token] = None
            return JSONResponse({"token": token})
        if method == "auth.getSession":
            token = form.get("token", "")
            if token not in self.tokens:
                return self.error(4, "Invalid authentication token supplied", 403)
            user = self.tokens[token]
            if user is None:
                return self.error(14, "This token has not been authorized", 403)
            del self.tokens[token]
            return JSONResponse({"session": {"name": user, "key": self.session_for(user), "subscriber": 0}})
        if method not in ("track.scrobble", "track.updateNowPlaying"):
            return self.error(3, "Invalid Method - No method with that name in this package")
        self.calls.submits += 1
        self.calls.in_flight += 1
        self.calls.max_in_flight = max(self.calls.max_in_flight, self.calls.in_flight)
        try:
            return await self._track(method, form)
        finally:
            self.calls.in_flight -= 1

    async def _track(self, method: str, form: dict[str, str]) -> Response:
        fault = self.faults.popleft() if self.faults else None
        if fault == "down":
            return Response("<html>503</html>", status_code=503)
        if fault == "429":
            return self.error(29, "Rate Limit Exceeded", 429)
        user = self.sessions.get(form.get("sk", ""))
        if user is None or fault == "badsession":
            return self.error(9, "Invalid session key - Please re-authenticate", 403)
        if method == "track.updateNowPlaying":
            if not form.get("artist") or not form.get("track"):
                return self.error(6, "Invalid parameters")
            self.calls.now_playing.append(form)
            return JSONResponse({"nowplaying": {"track": {"#text": form["track"]}}})
        entries: dict[int, dict[str, str]] = {}
        for name, value in form.items():
            match = _INDEXED.fullmatch(name)
            if match:
                entries.setdefault(int(match.group(2)), {})[match.group(1)] = value
        if not entries or sorted(entries) != list(range(len(entries))) or len(entries) > 50:
            self.calls.refused.append("bad indices")
            return self.error(6, "Invalid parameters - scrobbles must be indexed 0..n-1, at most 50")
        results = []
        accepted = ignored = 0
        mine = self.scrobbles.setdefault(user, {})
        for index in range(len(entries)):
            entry = entries[index]
            if not entry.get("artist") or not entry.get("track") or not entry.get("timestamp", "").isdigit():
                return self.error(6, "Invalid parameters - artist, track and timestamp are required")
            code = "0"
            if int(entry["timestamp"]) < self.now() - LASTFM_MAX_AGE_S:
                code = "3"
            if code == "0":
                key = (int(entry["timestamp"]), entry["artist"], entry["track"])
                if key in mine:
                    self.calls.duplicates += 1
                mine[key] = entry
                accepted += 1
            else:
                ignored += 1
            results.append({"track": {"#text": entry["track"], "corrected": "0"},
                            "artist": {"#text": entry["artist"], "corrected": "0"},
                            "timestamp": entry["timestamp"], "ignoredMessage": {"code": code, "#text": ""}})
        self.calls.accepted_batches.append(results)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        if fault == "hang":
            self.hung.set()
            await asyncio.Event().wait()
        return JSONResponse({"scrobbles": {"@attr": {"accepted": accepted, "ignored": ignored},
                                           "scrobble": results[0] if len(results) == 1 else results}})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/2.0/", self.api, methods=["POST"])])


class Served:
    """An ASGI app under uvicorn on a fixed loopback port, in a thread; ``restart`` kills and restarts."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._start()

    def _start(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app, log_level="critical", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake service did not start")
            time.sleep(0.01)

    def stop(self, force: bool = False) -> None:
        self._server.should_exit = True
        self._server.force_exit = force
        self._thread.join(timeout=30)
        self._sock.close()

    def close(self) -> None:
        self.stop(force=True)

    def restart(self) -> None:
        """Kill the server with its open connections (a request in flight gets no answer) and start it
        again on the same port."""
        self.stop(force=True)
        self._start()
