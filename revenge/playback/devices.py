"""A user's devices and remote control (pure): what a device is playing, the device list, and the
commands one device sends another.

What the stores keep per user, as flat fields (a Redis hash, or a dict in memory):
``p:<device>`` → the JSON of :class:`Playing` (last change to what it plays), ``s:<device>`` → when an
event stream of that device was last known open (ms). :func:`device_list` merges them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

PlayState = Literal["playing", "paused", "stopped"]
COMMANDS = ("play", "pause", "seek", "next", "previous", "volume", "transfer")
PLAYING_PREFIX = "p:"
SEEN_PREFIX = "s:"
MAX_SEEK_SECONDS = 10**9


class CommandError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Playing:
    item_id: str
    position_ms: int
    duration_ms: int
    state: PlayState
    at_ms: int  # when the position was the device's
    playback_rate: float = 1.0

    def encode(self) -> str:
        return orjson.dumps({"i": self.item_id, "p": self.position_ms, "d": self.duration_ms,
                             "s": self.state, "a": self.at_ms, "r": self.playback_rate}).decode()

    @classmethod
    def decode(cls, text: str | bytes) -> Playing:
        raw = orjson.loads(text)
        return cls(raw["i"], int(raw["p"]), int(raw["d"]), raw["s"], int(raw["a"]), float(raw.get("r", 1.0)))

    def position_at(self, now_ms: int) -> int:
        """Where the device is now: still moving when it is playing (at its rate), never past the end."""
        if self.state != "playing":
            return self.position_ms
        moved = self.position_ms + max(0, now_ms - self.at_ms) * self.playback_rate
        return min(self.duration_ms, round(moved)) if self.duration_ms > 0 else round(moved)


def state_of_progress_event(event: str) -> PlayState:
    """What a progress update's ``event`` says about the player."""
    if event == "pause":
        return "paused"
    if event == "stop":
        return "stopped"
    return "playing"


@dataclass(frozen=True, slots=True)
class Command:
    command: str
    position_ms: int | None = None  # seek
    level: float | None = None  # volume
    to_device: str | None = None  # transfer

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"command": self.command}
        if self.position_ms is not None:
            body["position_seconds"] = self.position_ms / 1000.0
        if self.level is not None:
            body["level"] = self.level
        if self.to_device is not None:
            body["to_device"] = self.to_device
        return body


def _number(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None:
        raise CommandError(name, f"{name} is required")
    if value.__class__ is bool or not isinstance(value, (int, float)) or value != value:
        raise CommandError(name, f"{name} must be a number")
    return float(value)


def parse_command(body: Mapping[str, Any], is_device_id: Any) -> Command:
    """The command a request body asks for; :class:`CommandError` naming the field otherwise.
    ``is_device_id`` checks ``to_device``'s format (the progress model's rule)."""
    command = body.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        raise CommandError("command", f"command must be one of {', '.join(COMMANDS)}")
    if command == "seek":
        seconds = _number(body, "position_seconds")
        if not 0 <= seconds <= MAX_SEEK_SECONDS:
            raise CommandError("position_seconds", f"position_seconds must be 0..{MAX_SEEK_SECONDS}")
        return Command(command, position_ms=round(seconds * 1000))
    if command == "volume":
        level = _number(body, "level")
        if not 0.0 <= level <= 1.0:
            raise CommandError("level", "level must be 0..1")
        return Command(command, level=level)
    if command == "transfer":
        target = body.get("to_device")
        if not isinstance(target, str) or not is_device_id(target):
            raise CommandError("to_device", "to_device must be a device id")
        return Command(command, to_device=target)
    return Command(command)


def device_list(fields: Mapping[str, str | bytes], connected: set[str], now_ms: int,
                recent_ms: int, connected_ms: int) -> list[dict[str, Any]]:
    """The user's devices seen within ``recent_ms``, most recently seen first. A device is ``connected``
    when it is in ``connected`` (a stream open here) or another instance saw its stream within
    ``connected_ms``; ``position_seconds`` is where it is now (a playing device moves on)."""
    playing: dict[str, Playing] = {}
    seen: dict[str, int] = {}
    for name, value in fields.items():
        text = value.decode() if isinstance(value, bytes) else value
        if name.startswith(PLAYING_PREFIX):
            try:
                playing[name[len(PLAYING_PREFIX):]] = Playing.decode(text)
            except (ValueError, KeyError, TypeError):
                continue  # a damaged entry hides one device, not the list
        elif name.startswith(SEEN_PREFIX) and text.isdigit():
            seen[name[len(SEEN_PREFIX):]] = int(text)
    devices = []
    for device_id in set(playing) | set(seen) | connected:
        play = playing.get(device_id)
        last = max(seen.get(device_id, 0), play.at_ms if play is not None else 0)
        is_connected = device_id in connected or now_ms - seen.get(device_id, 0) <= connected_ms
        if is_connected:
            last = max(last, now_ms) if device_id in connected else last
        if now_ms - last > recent_ms and not is_connected:
            continue
        entry: dict[str, Any] = {"device_id": device_id, "connected": is_connected, "last_seen": last,
                                 "item_id": None, "state": "stopped", "position_seconds": None}
        if play is not None:
            entry.update(item_id=play.item_id, state=play.state,
                         position_seconds=play.position_at(now_ms) / 1000.0,
                         duration_seconds=play.duration_ms / 1000.0, playback_rate=play.playback_rate)
        devices.append(entry)
    devices.sort(key=lambda d: (-d["last_seen"], d["device_id"]))
    return devices
