"""``SessionService``: playback sessions as the routes and the HLS engine use them.

Created and closed by ``create_app``'s lifespan; held in ``AppState.sessions``. It owns the session store
(memory or Redis), feeds heartbeats to the progress batcher, and runs the idle reaper.

Ending a session (stopped, replaced by the same device, idle) calls the callbacks registered with
:meth:`SessionService.on_end` — the HLS engine cancels the session's prefetches there. The reaper
watches the sessions this instance has seen (started, heartbeat, segment requests): when one of them
is past its idle deadline it sweeps that user's sessions in the store, which also learns whether
another instance kept the session alive meanwhile. So callbacks run on the instance that ends a
session and on every instance that served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from revenge.errors import StoreUnavailable
from revenge.library.album_stream import locate, spans
from revenge.playback import sessions as rules
from revenge.playback.album_session import album_beat
from revenge.playback.decide import Decision
from revenge.playback.session_store import SessionStore, open_session_store
from revenge.playback.sessions import EndReason, Kind, PlayerState, Session, SessionCapReached
from revenge.progress import rules as progress_rules
from revenge.progress.model import ProgressEvent, ProgressState

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.library.model import Item
    from revenge.progress.service import ProgressService

log = logging.getLogger("revenge.playback")

EndCallback = Callable[[Session, EndReason], None]
StartCallback = Callable[[Session], None]
ItemLookup = Callable[[str], "Item | None"]
AlbumLookup = Callable[[str], "Sequence[Item]"]  # an album's tracks in order ([] when gone)


class ItemGone(LookupError):
    """The session's item is no longer in the catalog (removed by a rescan)."""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    session: Session
    progress: ProgressState
    item: Item  # for an album session: the track playing at the position
    offset_ms: int | None = None  # album sessions: the position within that track


class SessionService:
    def __init__(self, store: SessionStore, *, idle_seconds: float, cap: int,
                 progress: ProgressService | None = None, item_of: ItemLookup | None = None,
                 album_of: AlbumLookup | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.idle_ms = round(idle_seconds * 1000)
        self.cap = cap
        self.progress = progress
        self._item_of = item_of
        self._album_of = album_of
        self._clock = clock
        self._callbacks: list[EndCallback] = []
        self._start_callbacks: list[StartCallback] = []
        self._track_callbacks: list[StartCallback] = []
        self._watch: dict[str, dict[str, Session]] = {}  # user id → session id → last known state
        self._reaper: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, progress: ProgressService, item_of: ItemLookup,
                   album_of: AlbumLookup | None = None) -> SessionService:
        """Open the store ``settings.store`` implies and start the reaper on the running loop."""
        store = open_session_store(settings)
        await store.open()
        service = cls(store, idle_seconds=settings.session_idle_seconds, cap=settings.sessions_per_user,
                      progress=progress, item_of=item_of, album_of=album_of)
        service.start_reaper()
        return service

    async def close(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        await self.store.close()

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- hooks for the HLS engine ---------------------------------------------------------------------

    def on_end(self, callback: EndCallback) -> Callable[[], None]:
        """Call ``callback(session, reason)`` whenever a session ends; returns the unregister function.
        Callbacks run on the event loop and must not block; their exceptions are logged."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def on_start(self, callback: StartCallback) -> Callable[[], None]:
        """Call ``callback(session)`` when a session starts here (the scrobblers' "now playing"); returns
        the unregister function. It must not block (start a task for any I/O); exceptions are logged."""
        self._start_callbacks.append(callback)
        return lambda: self._start_callbacks.remove(callback)

    def on_track(self, callback: StartCallback) -> Callable[[], None]:
        """Call ``callback(session)`` when a heartbeat of an album session finds another track playing
        (``playing_item_id`` names it); the same rules as :meth:`on_start`."""
        self._track_callbacks.append(callback)
        return lambda: self._track_callbacks.remove(callback)

    async def touch(self, user_id: str, item_id: str) -> int:
        """A segment request of ``user_id`` for ``item_id``: refreshes the idle timer of the user's
        sessions on that item. Returns how many there are (0: the URL is played outside a session)."""
        touched = await self.store.touch_item(user_id, item_id, self.now_ms())
        for session in touched:
            self._remember(session)
        return len(touched)

    def playing_item_id(self, session: Session) -> str | None:
        """The item the session plays at its position: the item, or an album's track there (None when
        the album has no tracks left)."""
        if session.kind != "album":
            return session.item_id
        tracks = list(self._album_of(session.item_id)) if self._album_of is not None else []
        return locate(spans(tracks), session.position_ms)[0] if tracks else None

    # --- the session API ------------------------------------------------------------------------------

    async def start(self, user_id: str, device_id: str, item_id: str, decision: Decision, resume_ms: int,
                    token_expires_at: int, kind: Kind = "item") -> Session:
        """A new session for the user's device (replacing that device's session); raises
        :class:`SessionCapReached` when the user has ``cap`` sessions on other devices. For an album
        (``kind``), ``item_id`` is the album's id and ``resume_ms`` a position on its timeline."""
        now = self.now_ms()
        session = Session(
            id=rules.new_session_id(), user_id=user_id, device_id=device_id, item_id=item_id,
            mode=decision.mode, profiles=decision.profiles, reasons=decision.reasons, resume_ms=resume_ms,
            created_ms=now, token_expires_at=token_expires_at, last_active_ms=now, position_ms=resume_ms,
            kind=kind,
        )
        outcome = await self.store.start(session, self.cap, now)
        for old in outcome.expired:
            self._ended(old, "idle")
        for old in outcome.replaced:
            self._ended(old, "replaced")
        if not outcome.accepted:
            raise SessionCapReached(self.cap)
        self._remember(session)
        self._notify(self._start_callbacks, session)
        return session

    async def get(self, user_id: str, session_id: str) -> Session | None:
        session = await self.store.get(user_id, session_id, self.now_ms())
        if session is not None and session.id in self._watch.get(user_id, {}):
            self._remember(session)
        return session

    async def heartbeat(self, user_id: str, session_id: str, position_ms: int, state: PlayerState,
                        playback_rate: float = 1.0,
                        event: ProgressEvent | None = None) -> HeartbeatResult | None:
        """Record the player's position and state, refresh the idle timer, and apply the position as a
        progress update through the batcher: ``event`` when the player names one (``start``, ``seek``…),
        else the state's (``progress``; ``pause`` when paused, ``stop`` when stopped).
        ``None`` when the user has no live session of that id. Raises ``StoreUnavailable`` /
        ``BatcherOverloaded`` from the progress side, :class:`ItemGone` when the item left the catalog."""
        if self.progress is None or self._item_of is None:
            raise RuntimeError("SessionService was built without progress and catalog")
        received = self.now_ms()
        existing = await self.store.get(user_id, session_id, received)
        if existing is None:
            return None
        if existing.kind == "album":
            return await self._album_heartbeat(existing, position_ms, state, playback_rate, event, received)
        item = self._item_of(existing.item_id)
        if item is None:
            raise ItemGone(existing.item_id)
        clamped = progress_rules.clamp_position(position_ms, item.duration_ms)
        session = await self.store.heartbeat(user_id, session_id, clamped, state, received)
        if session is None:  # ended between the two calls
            return None
        self._remember(session)
        update = progress_rules.make_update(
            user_id, item.id, item.type, item.duration_ms, clamped, event or rules.progress_event_for(state),
            session.device_id, None, received, playback_rate,
        )
        return HeartbeatResult(session, await self.progress.update(update), item)

    async def _album_heartbeat(self, existing: Session, position_ms: int, state: PlayerState,
                               playback_rate: float, event: ProgressEvent | None,
                               received: int) -> HeartbeatResult | None:
        """The position is on the album timeline: the session keeps it, the tracks get the progress
        (:func:`revenge.playback.album_session.album_beat`)."""
        assert self.progress is not None
        tracks = list(self._album_of(existing.item_id)) if self._album_of is not None else []
        if not tracks:
            raise ItemGone(existing.item_id)
        track_spans = spans(tracks)
        clamped = max(0, min(position_ms, track_spans[-1].end_ms))
        session = await self.store.heartbeat(existing.user_id, existing.id, clamped, state, received)
        if session is None:
            return None
        self._remember(session)
        beat = album_beat(track_spans, {t.id: t for t in tracks}, existing.position_ms, clamped,
                          event or rules.progress_event_for(state), session.user_id, session.device_id,
                          received, playback_rate)
        # One batch, in order: the previous track's end, then the next one's start and position.
        results = await self.progress.update_many(beat.updates)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        progress = results[-1]
        assert isinstance(progress, ProgressState)
        if beat.track.id != locate(track_spans, existing.position_ms)[0]:
            self._notify(self._track_callbacks, session)
        return HeartbeatResult(session, progress, beat.track, beat.offset_ms)

    async def stop(self, user_id: str, session_id: str) -> Session | None:
        """End the session; ``None`` when the user has no live session of that id."""
        session = await self.store.end(user_id, session_id)
        if session is None:
            return None
        if rules.is_idle(session, self.now_ms(), self.idle_ms):
            self._ended(session, "idle")  # it had already timed out: nothing left to stop
            return None
        self._ended(session, "stopped")
        return session

    # --- the reaper -----------------------------------------------------------------------------------

    @property
    def reap_interval(self) -> float:
        """How often the reaper looks: a quarter of the idle timeout, within 50 ms..5 s."""
        return min(5.0, max(0.05, self.idle_ms / 4000))

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(), name="session-reaper")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            try:
                await self.reap_once()
            except StoreUnavailable as exc:
                log.warning("session reaper: %s (retrying)", exc)
            except Exception:
                log.exception("session reaper failed (retrying)")

    async def reap_once(self) -> list[Session]:
        """End every watched session that is past its idle deadline (and still idle in the store)."""
        now = self.now_ms()
        due = [user_id for user_id, watched in self._watch.items()
               if any(rules.is_idle(s, now, self.idle_ms) for s in watched.values())]
        ended: list[Session] = []
        for user_id in due:
            live, idle = await self.store.sweep(user_id, now)
            live_by_id = {s.id: s for s in live}
            for session in idle:
                self._ended(session, "idle")
                ended.append(session)
            for session_id, known in list(self._watch.get(user_id, {}).items()):
                if session_id in live_by_id:
                    self._watch[user_id][session_id] = live_by_id[session_id]  # kept alive elsewhere
                else:
                    # Gone from the store without our sweep: timed out (Redis expired the keys) or
                    # stopped/replaced on another instance.
                    self._ended(known, "idle" if rules.is_idle(known, now, self.idle_ms) else "gone")
                    ended.append(known)
        return ended

    # --- bookkeeping ----------------------------------------------------------------------------------

    def _notify(self, callbacks: list[StartCallback], session: Session) -> None:
        for callback in list(callbacks):
            try:
                callback(session)
            except Exception:
                log.exception("session callback %r failed", callback)

    def _remember(self, session: Session) -> None:
        self._watch.setdefault(session.user_id, {})[session.id] = session

    def _ended(self, session: Session, reason: EndReason) -> None:
        watched = self._watch.get(session.user_id)
        if watched is not None:
            watched.pop(session.id, None)
            if not watched:
                del self._watch[session.user_id]
        for callback in list(self._callbacks):
            try:
                callback(session, reason)
            except Exception:
                log.exception("session end callback %r failed", callback)

    def watched_count(self) -> int:
        """Sessions this instance is watching (for metrics: active sessions seen here)."""
        return sum(len(w) for w in self._watch.values())
