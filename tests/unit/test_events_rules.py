"""The pure parts of live events: ids, replay decisions, SSE frames, commands, the device list."""

from __future__ import annotations

import orjson
import pytest

from revenge.playback.devices import CommandError, Playing, device_list, parse_command
from revenge.playback.event_hub import Subscriber
from revenge.playback.events import (
    Event,
    decode_event,
    encode_body,
    next_event_id,
    parse_event_id,
    replay_after,
    sse_frame,
)
from revenge.progress.model import is_device_id


def ev(event_id: str, origin: str = "", target: str = "") -> Event:
    return Event(event_id, "progress", b"{}", origin, target)


def test_ids_grow_even_when_the_clock_steps_back() -> None:
    assert next_event_id(None, 100) == (100, 0)
    assert next_event_id((100, 0), 100) == (100, 1)
    assert next_event_id((100, 1), 90) == (100, 2)
    assert next_event_id((100, 2), 101) == (101, 0)
    assert parse_event_id("5-3") == (5, 3)
    for bad in ("5", "5-", "-3", "a-1", "5-3\n", "1" * 40 + "-0", None):
        assert parse_event_id(bad) is None


def test_replay_gives_what_follows_an_id_still_held_else_resync() -> None:
    backlog = [ev("10-0"), ev("10-1"), ev("12-0")]
    assert [e.id for e in replay_after("10-0", backlog) or []] == ["10-1", "12-0"]
    assert replay_after("12-0", backlog) == []
    assert replay_after("9-0", backlog) is None  # older than the backlog: dropped events between
    assert replay_after("11-0", backlog) is None  # never one of ours
    assert replay_after("13-0", backlog) is None  # from before a restart (a newer id we never gave)
    assert replay_after("junk", backlog) is None
    assert replay_after("1-0", []) is None


def test_events_skip_their_origin_and_commands_reach_only_their_target() -> None:
    assert not ev("1-0", origin="a").for_device("a") and ev("1-0", origin="a").for_device("b")
    command = ev("1-0", origin="a", target="c")
    assert command.for_device("c") and not command.for_device("b")


def test_stored_form_and_frames() -> None:
    body = encode_body("queue", b'{"v":1}', "a", "")
    assert decode_event("3-0", body) == Event("3-0", "queue", b'{"v":1}', "a", "")
    assert sse_frame("queue", b'{"v":1}', "3-0") == b'id: 3-0\nevent: queue\ndata: {"v":1}\n\n'
    assert sse_frame("ready", b"{}") == b"event: ready\ndata: {}\n\n"


def test_a_subscriber_drops_duplicates_and_overflows_instead_of_growing() -> None:
    sub = Subscriber("1", "phone", capacity=2)
    sub.offer(ev("1-0"))
    sub.seen_up_to("1-0")  # replayed: the live copy that was buffered meanwhile goes
    assert not sub.buffer
    sub.offer(ev("1-0"))
    sub.offer(ev("2-0", origin="phone"))  # its own
    assert not sub.buffer and sub.newest_id == "2-0"
    sub.offer(ev("3-0"))
    sub.offer(ev("4-0"))
    assert [e.id for e in sub.buffer] == ["3-0", "4-0"] and not sub.overflowed
    sub.offer(ev("5-0"))
    assert sub.overflowed and not sub.buffer and sub.newest_id == "5-0"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "command"), ({"command": "stop"}, "command"), ({"command": 1}, "command"),
    ({"command": "seek"}, "position_seconds"),
    ({"command": "seek", "position_seconds": -1}, "position_seconds"),
    ({"command": "seek", "position_seconds": "3"}, "position_seconds"),
    ({"command": "volume", "level": 1.5}, "level"), ({"command": "volume", "level": False}, "level"),
    ({"command": "transfer"}, "to_device"), ({"command": "transfer", "to_device": "bad id"}, "to_device"),
])
def test_bad_commands_name_their_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(body, is_device_id)
    assert caught.value.field == field


def test_good_commands() -> None:
    assert parse_command({"command": "seek", "position_seconds": 1.5}, is_device_id).payload() == \
        {"command": "seek", "position_seconds": 1.5}
    assert parse_command({"command": "volume", "level": 0}, is_device_id).level == 0.0
    assert parse_command({"command": "transfer", "to_device": "tv"}, is_device_id).to_device == "tv"
    assert parse_command({"command": "next", "extra": 1}, is_device_id).payload() == {"command": "next"}


def test_the_device_list_merges_what_devices_play_with_open_streams() -> None:
    now = 1_700_000_000_000
    fields = {
        "p:kitchen": Playing("item", 10_000, 60_000, "playing", now - 5_000).encode(),
        "p:car": Playing("other", 3_000, 60_000, "paused", now - 50_000).encode(),
        "p:old": Playing("other", 1, 2, "stopped", now - 10_000_000).encode(),
        "s:tv": str(now - 1_000).encode(),
        "p:broken": "{",
    }
    listed = device_list(fields, {"phone"}, now, recent_ms=3_600_000, connected_ms=30_000)
    by_id = {d["device_id"]: d for d in listed}
    assert [d["device_id"] for d in listed] == ["phone", "tv", "kitchen", "car"]
    assert by_id["kitchen"]["position_seconds"] == 15.0  # still playing: 5 s later
    assert by_id["car"]["position_seconds"] == 3.0 and by_id["car"]["state"] == "paused"
    assert by_id["phone"]["connected"] and by_id["tv"]["connected"] and not by_id["car"]["connected"]
    assert by_id["phone"]["item_id"] is None
    assert orjson.dumps(listed)  # JSON as it is


def test_a_playing_position_stops_at_the_end() -> None:
    assert Playing("i", 59_000, 60_000, "playing", 0, 2.0).position_at(10_000) == 60_000
