"""The Redis layout of the progress store (``revenge.progress.store_dragonfly``): its keys, the KEYS of
a script call, and the states its scripts return, parsed."""

from __future__ import annotations

from typing import Any

import orjson

from revenge.library.model import ITEM_TYPES
from revenge.progress.model import (
    STATE_FIELD_KINDS,
    STATE_HASH_FIELDS,
    DevicePosition,
    ProgressState,
    ProgressUpdate,
)


def state_key(user_id: str, item_id: str) -> str:
    return f"rv:{{{user_id}}}:p:{item_id}"


def devices_key(user_id: str, item_id: str) -> str:
    return f"rv:{{{user_id}}}:d:{item_id}"


def continue_key(user_id: str, item_type: str) -> str:
    return f"rv:{{{user_id}}}:c:{item_type}"


def recent_key(user_id: str, item_type: str) -> str:
    return f"rv:{{{user_id}}}:r:{item_type}"


def plays_key(user_id: str, item_type: str) -> str:
    return f"rv:{{{user_id}}}:n:{item_type}"


def user_keys(user_id: str) -> list[str]:
    """The user's sorted sets, one of each kind per item type (continue candidates first): the start of
    the user's group of KEYS."""
    return ([continue_key(user_id, t) for t in ITEM_TYPES] + [recent_key(user_id, t) for t in ITEM_TYPES]
            + [plays_key(user_id, t) for t in ITEM_TYPES])


def script_keys(user_id: str, *item_ids: str) -> tuple[str, ...]:
    """KEYS of a script call for one user's items: its sorted sets, then each item's state and devices
    hashes (the layout lua/common.lua expects)."""
    keys = user_keys(user_id)
    for item_id in item_ids:
        keys += (state_key(user_id, item_id), devices_key(user_id, item_id))
    return tuple(keys)


def _float_text(value: float | None) -> str:
    # repr of a float is the shortest text that reads back as the same double, in Python and in Lua.
    return "" if value is None else repr(float(value))


class UpdateCall:
    """Updates that go to apply_updates.lua in one call, in batch order, of one user or several (any users
    on a single server, the users of one slot on a cluster). KEYS as lua/common.lua lays them out: per
    user, its continue sets, then the key pairs of its items; a user met again after another one starts a
    new group."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.items: dict[tuple[str, str], int] = {}  # (user, item) → the item's 0-based index in KEYS
        self.updates: list[dict[str, Any]] = []
        self.positions: list[int] = []  # where each update is in the batch
        self._group_user: str | None = None

    def add(self, position: int, u: ProgressUpdate) -> None:
        index = self.items.get((u.user_id, u.item_id))
        if index is None:
            if u.user_id != self._group_user:
                self.keys += user_keys(u.user_id)
                self._group_user = u.user_id
            index = self.items[u.user_id, u.item_id] = len(self.items)
            self.keys += (state_key(u.user_id, u.item_id), devices_key(u.user_id, u.item_id))
        self.updates.append({
            "item": index,
            "user_id": u.user_id, "item_id": u.item_id, "item_type": u.item_type,
            "duration_ms": u.duration_ms, "position_ms": u.position_ms, "event": u.event,
            "device_id": u.device_id, "event_ts_ms": u.event_ts_ms, "received_ms": u.received_ms,
            "playback_rate": _float_text(u.playback_rate),
        })
        self.positions.append(position)



Flat = list[str] | dict[str, str]  # a Redis hash as cjson gives it back


def _pairs(flat: Flat) -> dict[str, str]:
    # cjson encodes an empty Lua table as {} (it cannot tell an empty array from an empty object).
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def parse_state(reply: bytes) -> ProgressState | None:
    """The JSON ``[state fields, device fields]`` a script returns → the state, or None if empty."""
    flat, device_flat = orjson.loads(reply)
    return _state_of(flat, device_flat)


def _state_of(flat: Flat, device_flat: Flat) -> ProgressState | None:
    fields = _pairs(flat)
    if "user_id" not in fields:  # none, or the tombstone a journaled reset leaves (lua/reset.lua)
        return None
    devices = {d: DevicePosition.decode(row) for d, row in _pairs(device_flat).items()}
    return ProgressState.from_hash(fields, devices)


_ROW_LENGTH = len(STATE_HASH_FIELDS)
_ITEM_TYPE = STATE_HASH_FIELDS.index("item_type")
_FLOATS = tuple(i for i, kind in enumerate(STATE_FIELD_KINDS.values()) if kind == "f")


def state_of_row(row: list[Any]) -> ProgressState:
    """A state from ``state_row_json`` (lua/common.lua): its values, typed, in ``ProgressState``'s field
    order (which ``STATE_HASH_FIELDS`` is), so they go straight in as positional arguments."""
    if len(row) != _ROW_LENGTH or row[_ITEM_TYPE] not in ITEM_TYPES:
        raise RuntimeError(f"apply_updates.lua returned a malformed state: {row!r}")
    for i in _FLOATS:  # sent as text, so that they round-trip exactly
        row[i] = float(row[i])
    return ProgressState(*row)
