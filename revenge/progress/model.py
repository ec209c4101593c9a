"""Progress data: one update as the server accepted it, the per-(user, item) state, the per-device rows,
and the completion policy per item type. Plain dataclasses, no I/O.

Everything is flat scalars so the state can live in one Redis hash (``to_hash``/``from_hash``) or one
SQLite row, and so the Lua mirror of ``rules.py`` can read and write it field by field. Times are
milliseconds since the Unix epoch; positions and durations are milliseconds.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from revenge.library.model import ITEM_TYPES, ItemType

ProgressEvent = Literal["start", "progress", "pause", "seek", "stop"]
PROGRESS_EVENTS: tuple[ProgressEvent, ...] = ("start", "progress", "pause", "seek", "stop")

# A device id names a player (phone, browser, speaker): per-device progress rows and sessions key by it,
# and the session and Redis encodings rely on it holding no spaces.
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")


def is_device_id(value: str) -> bool:
    return DEVICE_ID_RE.fullmatch(value) is not None

# A state keeps the rows of at most this many devices; the device with the oldest event is dropped
# first, so a client that invents a new device id per request cannot grow a state without bound.
MAX_DEVICES_PER_ITEM = 16


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One accepted update, already validated and normalised by the endpoint.

    ``duration_ms`` is authoritative (the catalog's, not the client's); ``position_ms`` is already clamped
    to ``[0, duration_ms]``; ``event_ts_ms`` is the client's ``client_ts`` clamped to ``received_ms`` (the
    server clock when the request arrived), so a device whose clock runs ahead cannot win forever.
    """

    user_id: str
    item_id: str
    item_type: ItemType
    duration_ms: int
    position_ms: int
    event: ProgressEvent
    device_id: str
    event_ts_ms: int
    received_ms: int
    playback_rate: float = 1.0


ProgressOpKind = Literal["played", "unplayed", "hidden", "shown", "reset"]


@dataclass(frozen=True, slots=True)
class ProgressOp:
    """A user's action on one state at ``now_ms`` (mark played/unplayed, hide/show, reset), as the
    journal holds it. ``op_id`` (``"<now_ms>-<nonce>"``, unique) is what a state remembers of it, so that
    a replay applies it once (``replay.replay_op``); ``item_type``/``duration_ms`` are unused by a reset."""

    kind: ProgressOpKind
    user_id: str
    item_id: str
    item_type: ItemType
    duration_ms: int
    now_ms: int
    op_id: str


@dataclass(frozen=True, slots=True)
class DevicePosition:
    """The last position one device reported for one item (by that device's event time)."""

    position_ms: int
    event_ts_ms: int
    updated_ms: int  # server time the row was written

    def encode(self) -> str:
        """``"position:event_ts:updated"``: the value of the device's field in the Redis devices hash."""
        return f"{self.position_ms}:{self.event_ts_ms}:{self.updated_ms}"

    @classmethod
    def decode(cls, text: str | bytes) -> DevicePosition:
        if isinstance(text, bytes):
            text = text.decode()
        position, event_ts, updated = text.split(":")
        return cls(int(position), int(event_ts), int(updated))


@dataclass(frozen=True, slots=True)
class ProgressState:
    """Where one user is in one item, across devices.

    The *global* fields (``position_ms``, ``device_id``, ``event_ts_ms``, ``playback_rate``) are those of the
    update with the largest event time applied so far. ``version`` is a server counter bumped by every
    write. ``listen_*`` track the current listen of a track (see ``rules.apply_update``): when it started
    (event time), how much of it has been heard, and whether it has already counted as a play.
    """

    user_id: str
    item_id: str
    item_type: ItemType
    duration_ms: int
    position_ms: int = 0
    completed: bool = False
    play_count: int = 0
    completed_count: int = 0
    first_played_at: int | None = None
    last_played_at: int | None = None
    completed_at: int | None = None
    playback_rate: float = 1.0
    hidden: bool = False
    version: int = 0
    device_id: str = ""
    event_ts_ms: int = 0
    updated_ms: int = 0
    listen_started_at: int | None = None
    listened_ms: int = 0
    listen_counted: bool = False
    devices: Mapping[str, DevicePosition] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        if self.duration_ms <= 0:
            return 0.0
        return round(100.0 * self.position_ms / self.duration_ms, 2)

    def without_devices(self) -> ProgressState:
        """This state with no device rows, as write answers carry it."""
        return ProgressState(*state_values(self))

    def to_hash(self) -> dict[str, str]:
        """The scalar fields as a flat ``{name: text}`` mapping (Redis hash); ``None`` fields are left out,
        booleans are ``"1"``/``"0"``. Devices are not part of it (they live in their own hash)."""
        out: dict[str, str] = {}
        for name in STATE_HASH_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                out[name] = "1" if value else "0"
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_hash(
        cls,
        fields: Mapping[str, str] | Mapping[bytes, bytes],
        devices: Mapping[str, DevicePosition] | None = None,
    ) -> ProgressState:
        """Inverse of ``to_hash`` (accepts ``bytes`` keys/values as redis-py returns them)."""
        text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in fields.items()}
        item_type = text["item_type"]
        if item_type not in ITEM_TYPES:
            raise ValueError(f"bad item_type in stored progress: {item_type!r}")
        values: dict[str, object] = {}
        for name, kind in STATE_FIELD_KINDS.items():
            raw = text.get(name)
            if raw is None:
                continue
            if kind == "b":
                values[name] = raw == "1"
            elif kind == "i" or kind == "o":
                values[name] = int(float(raw)) if "." in raw or "e" in raw else int(raw)
            elif kind == "f":
                values[name] = float(raw)
            else:
                values[name] = raw
        return cls(devices=dict(devices or {}), **values)  # type: ignore[arg-type]


# The one definition of the stored fields: ProgressState's own (but ``devices``), in its order, each with a
# kind letter: s = string, i = integer, o = optional integer, b = boolean, f = float. The SQLite columns,
# the Redis hash, the Lua scripts' field table (scripts.fields_lua) and the positional rows the
# write script returns all follow it. A field of another type fails here, at import, until given a kind.
_KIND_OF_ANNOTATION = {"str": "s", "ItemType": "s", "int": "i", "int | None": "o", "bool": "b", "float": "f"}
STATE_FIELD_KINDS: Mapping[str, str] = {
    f.name: _KIND_OF_ANNOTATION[str(f.type)] for f in dataclasses.fields(ProgressState) if f.name != "devices"
}
STATE_HASH_FIELDS: tuple[str, ...] = tuple(STATE_FIELD_KINDS)
# A state's stored fields as a tuple, in STATE_HASH_FIELDS order, in one C call (the per-write hot path:
# a SQLite row, a copy without devices).
state_values: Callable[[ProgressState], tuple[object, ...]] = operator.attrgetter(*STATE_HASH_FIELDS)


@dataclass(frozen=True, slots=True)
class CompletionPolicy:
    """When an item of one type counts as completed / played, and whether it resumes.

    ``mode == "position"`` (episodes, audiobooks): completed as soon as the global position is in the
    completion zone: ``percent >= complete_percent`` or ``remaining <= complete_remaining_ms`` (either
    threshold may be ``None`` = not used). Crossing into the zone counts one play and one completion.

    ``mode == "listen"`` (tracks): a play is counted once per listen, when the time heard in that listen
    reaches ``play_percent`` of the duration or ``play_heard_ms``; items shorter than
    ``play_min_duration_ms`` never count.

    Resume: from the global position, except completed items, positions in the last
    ``resume_tail_percent`` and items shorter than ``resume_min_duration_ms`` (these start at 0).
    """

    mode: Literal["position", "listen"]
    complete_percent: float | None = None
    complete_remaining_ms: int | None = None
    play_percent: float = 50.0
    play_heard_ms: int = 240_000
    play_min_duration_ms: int = 30_000
    resume_min_duration_ms: int = 0
    resume_tail_percent: float = 5.0


DEFAULT_POLICIES: Mapping[ItemType, CompletionPolicy] = {
    "episode": CompletionPolicy(mode="position", complete_percent=95.0, complete_remaining_ms=30_000),
    "audiobook": CompletionPolicy(mode="position", complete_percent=None, complete_remaining_ms=30_000),
    "track": CompletionPolicy(mode="listen", play_percent=50.0, play_heard_ms=240_000,
                              play_min_duration_ms=30_000, resume_min_duration_ms=600_000),
}

Policies = Mapping[ItemType, CompletionPolicy]


PlayedOrder = Literal["recent", "frequent"]


class PlayedItem(NamedTuple):
    """One item a user played, as the per-user played lists give it (``ProgressStore.played``): a
    tuple, since a list holds up to 2 000 of them and is read once."""

    item_id: str
    last_played_at: int
    play_count: int
