"""Events pushed to a user's devices (pure): ids, the stored form, Server-Sent Events frames, and the
replay decision for a client that reconnects with ``Last-Event-ID``.

An event id is ``<ms>-<seq>``, the form Redis Streams give their entries, so both stores hand out the
same kind of id: monotonic per user (the embedded store makes them with :func:`next_event_id`).
An event may name the device that caused it (``origin``: that device does not get its own change back)
and the one device it is for (``target``: a remote-control command).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

EventId = tuple[int, int]
_ID_RE = re.compile(r"([0-9]{1,15})-([0-9]{1,15})")
MAX_ID_LENGTH = 31

# What a stream sends: the kinds of events (the ones in the backlog) and the control events.
STORED_TYPES = ("progress", "queue", "session", "command")
READY = "ready"  # first frame of every stream: {"device_id", "resumed"}
RESYNC = "resync"  # "re-read the state": the backlog no longer holds what the client missed
HEARTBEAT = b": hb\n\n"  # an SSE comment: keeps proxies from closing an idle stream


def parse_event_id(text: str | None) -> EventId | None:
    if text is None or len(text) > MAX_ID_LENGTH:
        return None
    match = _ID_RE.fullmatch(text)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def format_event_id(event_id: EventId) -> str:
    return f"{event_id[0]}-{event_id[1]}"


def next_event_id(last: EventId | None, now_ms: int) -> EventId:
    """The id after ``last`` at ``now_ms``: never smaller, even if the clock steps back."""
    if last is None or now_ms > last[0]:
        return (now_ms, 0)
    return (last[0], last[1] + 1)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    data: bytes  # the JSON payload
    origin: str = ""  # device that caused it ("" none)
    target: str = ""  # the one device it is for ("" every device of the user)

    def for_device(self, device_id: str) -> bool:
        if self.target:
            return self.target == device_id
        return self.origin != device_id


def encode_body(type_: str, data: bytes, origin: str, target: str) -> bytes:
    """The stored form of an event without its id (a Redis stream entry's field, an in-memory backlog's)."""
    return orjson.dumps({"t": type_, "o": origin, "g": target, "d": orjson.Fragment(data)})


def decode_event(event_id: str, body: bytes | str) -> Event:
    raw = orjson.loads(body)
    return Event(event_id, raw["t"], orjson.dumps(raw["d"]), raw.get("o", ""), raw.get("g", ""))


def sse_frame(type_: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE message. The JSON data holds no newline (orjson writes none), so one ``data:`` line."""
    head = b"" if event_id is None else b"id: " + event_id.encode() + b"\n"
    return head + b"event: " + type_.encode() + b"\ndata: " + data + b"\n\n"


def event_frame(event: Event) -> bytes:
    return sse_frame(event.type, event.data, event.id)


def replay_after(last_event_id: str, backlog: Sequence[Event]) -> list[Event] | None:
    """What a client that last saw ``last_event_id`` missed, from ``backlog`` (oldest first, contiguous:
    only its oldest entries are ever dropped). ``None``: it cannot be told (the id is malformed, or no
    longer in the backlog: too old, or from before a restart), so the client must resync."""
    wanted = parse_event_id(last_event_id)
    if wanted is None:
        return None
    ids = [parse_event_id(e.id) for e in backlog]
    low, high = 0, len(ids)
    while low < high:  # first entry whose id >= wanted
        middle = (low + high) // 2
        current = ids[middle]
        if current is not None and current < wanted:
            low = middle + 1
        else:
            high = middle
    if low == len(ids) or ids[low] != wanted:
        return None
    return list(itertools.islice(backlog, low + 1, None))
