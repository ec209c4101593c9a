"""One simulated player: session, playlists, a buffer of segments ahead of a play clock, heartbeats,
random seeks. Everything it observes goes into the run's shared :class:`Tally`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from revenge.loadtest.http import HttpClient, HttpError, Response
from revenge.loadtest.playback import PlayClock
from revenge.loadtest.playlist import (
    MediaPlaylist,
    PlaylistError,
    SegmentRef,
    choose_variant,
    parse_media,
    parse_multivariant,
)

SESSIONS_PATH = "api/v1/playback/sessions"
MAX_SEGMENT_TRIES = 5  # a player gives up on a segment after this many failed requests
MAX_RETRY_AFTER = 10.0
ERROR_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class PlayerProfile:
    """How every simulated player behaves."""

    speed: float = 1.0  # media seconds per wall second
    buffer: int = 3  # segments kept ahead of the one playing
    start_buffer: float = 2.5  # media seconds buffered before playback starts (ExoPlayer's default)
    heartbeat_seconds: float = 10.0
    seeks_per_minute: float = 0.5  # per player, wall minutes; 0 = never
    profile: str | None = "aac-128"  # the variant to play (else the server's first)
    codecs: tuple[str, ...] = ("aac",)  # declared capabilities: HLS only, as a source codec is not listed
    max_bitrate: int | None = None
    timeout: float = 30.0


@dataclass
class Tally:
    """What all players observed. Segment latencies are split by whether this run had requested the
    same (item, profile, segment) before: "cold" is the first request, "cached" every later one."""

    cold: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)  # session start → first segment in hand
    seek: list[float] = field(default_factory=list)  # seek → first segment at the new position
    heartbeat: list[float] = field(default_factory=list)  # a heartbeat = a durable progress write
    session_start: list[float] = field(default_factory=list)
    playlist: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)  # seconds each stall lasted
    stalled_listeners: set[int] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # segment paths requested so far
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    busy: int = 0  # 503 answers (back-pressure; the player retries after Retry-After)
    segments: int = 0
    segment_bytes: int = 0
    sessions: int = 0
    seeks: int = 0
    items_finished: int = 0
    active: int = 0  # players running now
    profiles: Counter[str] = field(default_factory=Counter)

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{what}: {detail}")

    def first_request(self, uri: str) -> bool:
        path = urlsplit(uri).path
        if path in self.seen:
            return False
        self.seen.add(path)
        return True

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class _Failed(Exception):
    """This session cannot go on (already tallied); the player starts over."""


def _retry_after(response: Response) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.1, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _detail(response: Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{response.status} {error.get('code')}: {error.get('message')}"
    except Exception:
        return f"{response.status} {response.body[:120]!r}"


@dataclass
class _Playing:
    """The state the heartbeat task reads while the fetch loop plays."""

    clock: PlayClock
    buffered_end: float

    def position(self, now: float) -> float:
        return self.clock.position(now, self.buffered_end)

    def state(self, now: float) -> str:
        if not self.clock.playing or self.position(now) >= self.buffered_end:
            return "buffering"
        return "playing"


class Listener:
    def __init__(self, number: int, base_url: str, api_key: str, items: list[str], player: PlayerProfile,
                 tally: Tally, rng: random.Random) -> None:
        self.number = number
        self.base_url = base_url
        self.items = items  # item ids, played in this order, round and round
        self.player = player
        self.tally = tally
        self.rng = rng
        self.device_id = f"bench-{number}"
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.client = HttpClient(timeout=player.timeout, headers={"User-Agent": "revenge-bench/1"})
        self.session_id: str | None = None
        self.playing: _Playing | None = None
        self._report_now = asyncio.Event()

    @staticmethod
    def now() -> float:
        # Not loop.time(): uvloop's clock has millisecond resolution.
        return time.perf_counter()

    async def run(self, start_at: float, end_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - self.now()))
        self.tally.active += 1
        try:
            turn = 0
            while self.now() < end_at:
                item_id = self.items[turn % len(self.items)]
                try:
                    if await self.play(item_id, end_at):
                        self.tally.items_finished += 1
                        turn += 1
                except _Failed:  # the listener presses play again on the same item a second later
                    await asyncio.sleep(min(1.0, max(0.0, end_at - self.now())))
        finally:
            self.tally.active -= 1
            with contextlib.suppress(Exception):
                await self.stop_session()
            await self.client.aclose()

    # --- API calls ---------------------------------------------------------------------------------

    async def call(self, what: str, method: str, path: str, body: object = None) -> Response:
        try:
            response = await self.client.request(method, urljoin(self.base_url, path), headers=self.auth,
                                                 json=body)
        except HttpError as exc:
            self.tally.error(f"{what} {exc.kind}", str(exc))
            raise _Failed from None
        if response.status >= 400:
            self.tally.error(f"{what} {response.status}", _detail(response))
            raise _Failed
        return response

    async def start_session(self, item_id: str) -> dict[str, object]:
        caps: dict[str, object] = {"codecs": list(self.player.codecs), "hls": True}
        if self.player.max_bitrate:
            caps["max_bitrate"] = self.player.max_bitrate
        started = self.now()
        response = await self.call("session", "POST", SESSIONS_PATH,
                                   {"item_id": item_id, "device_id": self.device_id, "capabilities": caps})
        self.tally.session_start.append(self.now() - started)
        body = response.json()
        self.tally.sessions += 1
        self.session_id = str(body["session_id"])
        if body.get("decision") != "hls":
            self.tally.error("session not hls", f"decision {body.get('decision')!r} for {item_id}")
            raise _Failed
        return dict(body)

    async def stop_session(self) -> None:
        session_id, self.session_id = self.session_id, None
        if session_id is not None:
            await self.client.request("DELETE", urljoin(self.base_url, f"{SESSIONS_PATH}/{session_id}"),
                                      headers=self.auth)

    async def heartbeat(self, playing: _Playing) -> None:
        if self.session_id is None:
            return
        now = self.now()
        body = {"position_seconds": round(playing.position(now), 3), "state": playing.state(now),
                "playback_rate": min(self.player.speed, 16.0)}
        await self.call("heartbeat", "POST", f"{SESSIONS_PATH}/{self.session_id}/heartbeat", body)
        self.tally.heartbeat.append(self.now() - now)

    async def heartbeats(self, end_at: float) -> None:
        """Every ``heartbeat_seconds``, and at once when the fetch loop asks (after a seek)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.player.heartbeat_seconds):
                    await self._report_now.wait()
            self._report_now.clear()
            if self.now() >= end_at:
                return
            if self.playing is not None:
                with contextlib.suppress(_Failed):
                    await self.heartbeat(self.playing)

    # --- media ---------------------------------------------------------------------------------------

    async def get_media(self, what: str, uri: str) -> bytes:
        """A playlist or init segment; 503 answers are retried after Retry-After."""
        for _ in range(MAX_SEGMENT_TRIES):
            try:
                response = await self.client.request("GET", uri)
            except HttpError as exc:
                self.tally.error(f"{what} {exc.kind}", str(exc))
                raise _Failed from None
            if response.status == 503:
                self.tally.busy += 1
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status != 200:
                self.tally.error(f"{what} {response.status}", _detail(response))
                raise _Failed
            return response.body
        self.tally.error(f"{what} busy", f"still 503 after {MAX_SEGMENT_TRIES} tries")
        raise _Failed

    async def segment(self, segment: SegmentRef) -> bytes:
        """Segment bytes as a player gets them: transport errors and 503 are retried (the latency is
        the player's, from the first request); other statuses end the session."""
        started = self.now()
        cold = self.tally.first_request(segment.uri)
        for attempt in range(1, MAX_SEGMENT_TRIES + 1):
            try:
                response = await self.client.request("GET", segment.uri)
            except HttpError as exc:
                self.tally.error(f"segment {exc.kind}", str(exc))
                if attempt == MAX_SEGMENT_TRIES:
                    raise _Failed from None
                await asyncio.sleep(1.0)
                continue
            if response.status == 503:
                self.tally.busy += 1
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status != 200:
                self.tally.error(f"segment {response.status}", _detail(response))
                raise _Failed
            (self.tally.cold if cold else self.tally.cached).append(self.now() - started)
            self.tally.segments += 1
            self.tally.segment_bytes += len(response.body)
            return response.body
        self.tally.error("segment busy", f"still 503 after {MAX_SEGMENT_TRIES} tries")
        raise _Failed

    async def open_stream(self, url: str) -> MediaPlaylist:
        started = self.now()
        try:
            multivariant = parse_multivariant((await self.get_media("playlist", url)).decode(), url)
            variant = choose_variant(multivariant, self.player.profile)
            media = parse_media((await self.get_media("playlist", variant.uri)).decode(), variant.uri)
        except (PlaylistError, UnicodeDecodeError) as exc:
            self.tally.error("playlist invalid", str(exc))
            raise _Failed from None
        self.tally.playlist.append(self.now() - started)
        self.tally.profiles[variant.profile] += 1
        if media.init_uri:
            await self.get_media("init", media.init_uri)
        return media

    def next_seek(self, now: float) -> float:
        rate = self.player.seeks_per_minute / 60.0
        return now + self.rng.expovariate(rate) if rate > 0 else float("inf")

    async def play(self, item_id: str, end_at: float) -> bool:
        """Play ``item_id`` until it ends (True) or the run does (False); ``_Failed`` on an error."""
        began = self.now()
        session = await self.start_session(item_id)
        media = await self.open_stream(urljoin(self.base_url, str(session["url"])))
        resume = float(session.get("resume_seconds") or 0.0)  # type: ignore[arg-type]
        position = resume if resume < media.duration else 0.0
        reporter = asyncio.create_task(self.heartbeats(end_at))
        try:
            return await self._play_from(media, position, began, end_at)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            self.playing = None

    def _new_run(self, media: MediaPlaylist, position: float) -> _Playing:
        clock = PlayClock(self.player.speed, position, self.player.start_buffer, media.duration)
        return _Playing(clock, position)

    async def _play_from(self, media: MediaPlaylist, position: float, since: float, end_at: float) -> bool:
        segments = media.segments
        buffer = self.player.buffer
        first = index = media.index_at(position)
        playing = self.playing = self._new_run(media, position)
        waits = self.tally.startup  # where the wait until this run of playback starts is counted
        seek_at = self.next_seek(self.now())
        while True:
            now = self.now()
            fetched_all = index >= len(segments)
            if fetched_all:  # play out the rest (unless a seek comes first), then the item is over
                fetch_at: float | None = playing.clock.due(media.duration)
            else:
                fetch_at = playing.clock.fetch_at(segments, index, first, buffer)
            wake = min(fetch_at if fetch_at is not None else now, seek_at, end_at)
            if wake > now:
                await asyncio.sleep(wake - now)
                now = self.now()
            if now >= end_at:
                return False
            if now >= seek_at:
                position = self.rng.uniform(0.0, media.duration * 0.95)
                first = index = media.index_at(position)
                playing = self.playing = self._new_run(media, position)
                since, waits = now, self.tally.seek
                seek_at = self.next_seek(now)
                self.tally.seeks += 1
                self._report_now.set()  # players report a seek at once
                continue
            if fetch_at is not None and now < fetch_at:
                continue
            if fetched_all:
                return True
            segment = segments[index]
            await self.segment(segment)
            arrived = self.now()
            was_playing = playing.clock.playing
            stalled = playing.clock.arrived(segment, arrived)
            playing.buffered_end = segment.end
            if not was_playing and playing.clock.playing:
                waits.append(arrived - since)
            elif stalled > 0.0:
                self.tally.stalls.append(stalled)
                self.tally.stalled_listeners.add(self.number)
            index += 1
