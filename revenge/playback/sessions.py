"""Playback sessions: the model and its rules (pure; the stores and the service do the I/O).

A session is one device of one user playing one item. It is keyed by (user, device): starting a new
one on the same device replaces the old one, so two devices never overwrite each other, and a user has
at most ``cap`` sessions at once (the replaced one does not count). A session ends when stopped,
replaced, or idle: no heartbeat and no segment request for ``idle_ms``.

Session ids are 128 random bits, never derived from time: knowing one session id tells nothing about
any other. They are not credentials either — every lookup is scoped to the calling user.

Storage form (the Redis store keeps it in two hashes; the Lua scripts parse only the live part):

* static: an orjson object of the fields fixed at start (``encode_static``);
* live: ``"<last_active_ms> <position_ms> <state> <item_id> <device_id>"`` (``encode_live``); device ids
  have no spaces (``progress.model.DEVICE_ID_RE``), item ids neither.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from revenge.progress.model import ProgressEvent

PlayerState = Literal["playing", "paused", "buffering", "stopped"]
PLAYER_STATES: tuple[PlayerState, ...] = ("playing", "paused", "buffering", "stopped")
Mode = Literal["direct", "hls"]
# What a session plays: one item, or an album as one gapless timeline (``item_id`` is then the album id,
# positions are on the album timeline, and progress lands on the track playing there).
Kind = Literal["item", "album"]
KINDS: tuple[Kind, ...] = ("item", "album")
# Why a session ended, as the end callbacks are told.
EndReason = Literal["stopped", "replaced", "idle", "gone"]

# secrets.token_urlsafe(16): 16 random bytes as 22 characters of URL-safe base64.
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_LIVE_RE = re.compile(r"(\d+) (\d+) ([a-z]+) (\S+) (\S+)")

# What a heartbeat's player state means to the progress rules.
_EVENT_FOR_STATE: dict[PlayerState, ProgressEvent] = {
    "playing": "progress",
    "buffering": "progress",
    "paused": "pause",
    "stopped": "stop",
}


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


def is_session_id(value: str) -> bool:
    return bool(SESSION_ID_RE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    device_id: str
    item_id: str
    mode: Mode
    profiles: tuple[str, ...]  # HLS variants offered, preferred first (empty for direct play)
    reasons: tuple[str, ...]  # why not direct play (empty for direct play)
    resume_ms: int  # where the player was told to start
    created_ms: int
    token_expires_at: int  # unix seconds: when the signed URL stops working
    last_active_ms: int
    position_ms: int = 0
    state: PlayerState = "playing"
    kind: Kind = "item"

    def deadline_ms(self, idle_ms: int) -> int:
        """When the session ends unless something refreshes it first."""
        return self.last_active_ms + idle_ms


class SessionCapReached(Exception):
    def __init__(self, cap: int) -> None:
        super().__init__(
            f"at most {cap} playback sessions at once per user: stop one "
            "(DELETE /api/v1/playback/sessions/{session_id}), start on a device that already has one, "
            "or wait for an idle one to time out"
        )
        self.cap = cap


def is_idle(session: Session, now_ms: int, idle_ms: int) -> bool:
    return now_ms >= session.deadline_ms(idle_ms)


@dataclass(frozen=True, slots=True)
class StartPlan:
    """What starting a session does to the user's other sessions."""

    accepted: bool  # False: the cap is reached (nothing changes but dropping the idle ones)
    expired: tuple[Session, ...]  # idle sessions to drop whatever happens
    replaced: tuple[Session, ...]  # the same device's session(s), dropped when accepted


def plan_start(existing: Iterable[Session], device_id: str, cap: int, now_ms: int, idle_ms: int) -> StartPlan:
    """Start a session on ``device_id`` next to the user's ``existing`` ones: idle ones are dropped,
    the one on the same device is replaced, and the rest must leave room under ``cap``."""
    expired: list[Session] = []
    replaced: list[Session] = []
    kept = 0
    for session in existing:
        if is_idle(session, now_ms, idle_ms):
            expired.append(session)
        elif session.device_id == device_id:
            replaced.append(session)
        else:
            kept += 1
    accepted = kept < cap
    return StartPlan(accepted, tuple(expired), tuple(replaced) if accepted else ())


def heartbeat(session: Session, position_ms: int, state: PlayerState, now_ms: int) -> Session:
    return dataclasses.replace(session, position_ms=max(0, position_ms), state=state,
                               last_active_ms=max(session.last_active_ms, now_ms))


def touch(session: Session, now_ms: int) -> Session:
    """Activity without a report (a segment request): only the idle timer moves."""
    return dataclasses.replace(session, last_active_ms=max(session.last_active_ms, now_ms))


def progress_event_for(state: PlayerState) -> ProgressEvent:
    return _EVENT_FOR_STATE[state]


def sweep(sessions: Sequence[Session], now_ms: int, idle_ms: int) -> tuple[list[Session], list[Session]]:
    """(live, idle) split of one user's sessions."""
    live = [s for s in sessions if not is_idle(s, now_ms, idle_ms)]
    idle = [s for s in sessions if is_idle(s, now_ms, idle_ms)]
    return live, idle


# --- storage form ---------------------------------------------------------------------------------------

def encode_static(session: Session) -> bytes:
    fixed = {
        "id": session.id, "user_id": session.user_id, "device_id": session.device_id,
        "item_id": session.item_id, "mode": session.mode, "profiles": list(session.profiles),
        "reasons": list(session.reasons), "resume_ms": session.resume_ms, "created_ms": session.created_ms,
        "token_expires_at": session.token_expires_at,
    }
    if session.kind != "item":  # item sessions keep the form they always had
        fixed["kind"] = session.kind
    return orjson.dumps(fixed)


def encode_live(session: Session) -> str:
    return (f"{session.last_active_ms} {session.position_ms} {session.state} {session.item_id} "
            f"{session.device_id}")


def decode(static: bytes | str, live: bytes | str) -> Session:
    """Inverse of ``encode_static`` + ``encode_live``; ``ValueError`` on anything else."""
    fixed = orjson.loads(static)
    text = live.decode() if isinstance(live, bytes) else live
    match = _LIVE_RE.fullmatch(text)
    if match is None or not isinstance(fixed, dict):
        raise ValueError(f"not a stored session: {text!r}")
    last_active, position, state, item_id, device_id = match.groups()
    kind = fixed.get("kind", "item")
    if state not in PLAYER_STATES or fixed.get("mode") not in ("direct", "hls") or kind not in KINDS:
        raise ValueError(f"not a stored session: {text!r}")
    if item_id != fixed["item_id"] or device_id != fixed["device_id"]:
        raise ValueError("stored session halves disagree")
    return Session(
        id=str(fixed["id"]), user_id=str(fixed["user_id"]), device_id=device_id, item_id=item_id,
        mode=fixed["mode"], profiles=tuple(fixed["profiles"]), reasons=tuple(fixed["reasons"]),
        resume_ms=int(fixed["resume_ms"]), created_ms=int(fixed["created_ms"]),
        token_expires_at=int(fixed["token_expires_at"]), last_active_ms=int(last_active),
        position_ms=int(position), state=state, kind=kind,  # type: ignore[arg-type]
    )
