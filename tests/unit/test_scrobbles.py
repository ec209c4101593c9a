"""Pure scrobble rules: dedup and merge, the progress hook's crossing detection, validation, stats."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from revenge.library.model import ITEM_TYPES, ItemType
from revenge.playback import scrobbles
from revenge.playback.scrobbles import (
    DAY_MS,
    Delivery,
    Mark,
    Scrobble,
    ScrobbleRejected,
    add_to,
    counted_play,
    day_totals,
    scrobble_for_play,
    stats_json,
    stats_range,
)
from revenge.progress import rules
from revenge.progress.model import (
    DEFAULT_POLICIES,
    PROGRESS_EVENTS,
    ProgressEvent,
    ProgressState,
    ProgressUpdate,
)

T0 = 1_700_000_000_000
ITEM = "abcdefghijklmnop"
TRACK_MS = 200_000


def scrobble(started_at: int = T0, listened_ms: int = 60_000, *, item_id: str = ITEM,
             item_type: ItemType = "track", device: str = "phone",
             deliveries: tuple[Delivery, ...] = ()) -> Scrobble:
    return Scrobble(user_id="1", item_id=item_id, item_type=item_type, started_at=started_at,
                    listened_ms=listened_ms, device_id=device, source="client", recorded_at=started_at + 1,
                    deliveries=deliveries)


def upd(position_ms: int, ts: int, event: ProgressEvent = "progress", item_type: ItemType = "track",
        duration_ms: int = TRACK_MS) -> ProgressUpdate:
    return rules.make_update("1", ITEM, item_type, duration_ms, position_ms, event, "phone", ts, ts)


# --- ids, dedup, merge ----------------------------------------------------------------------------------

def test_id_is_the_dedup_key_and_matches_its_pattern() -> None:
    s = scrobble()
    assert s.id == f"{ITEM}-{T0}"
    assert scrobbles.SCROBBLE_ID_RE.match(s.id)
    assert not scrobbles.SCROBBLE_ID_RE.match(f"{ITEM}-x")
    assert not scrobbles.SCROBBLE_ID_RE.match(f"../{ITEM}-1")


def test_first_add_creates_and_a_repeat_keeps_the_first_record() -> None:
    first = scrobble(listened_ms=90_000, device="phone")
    created = add_to(None, first)
    assert created.created and created.scrobble == first
    shorter = add_to(first, scrobble(listened_ms=10_000, device="laptop"))
    assert not shorter.created and shorter.scrobble == first


def test_a_longer_repeat_raises_listened_and_keeps_the_rest() -> None:
    sent = scrobble(listened_ms=100_000, device="phone", deliveries=(Delivery("lastfm", "sent", T0 + 5),))
    repeat = dataclasses.replace(scrobble(listened_ms=200_000, device="laptop"), source="progress")
    merged = add_to(sent, repeat)
    assert not merged.created
    assert merged.scrobble == dataclasses.replace(sent, listened_ms=200_000)


# --- the progress hook --------------------------------------------------------------------------------

def listen(start: int, until_ms: int, step_ms: int = 10_000) -> list[ProgressUpdate]:
    out = [upd(0, start, "start")]
    pos = 0
    while pos < until_ms:
        pos = min(pos + step_ms, until_ms)
        out.append(upd(pos, start + pos))
    return out


def hook_scrobbles(updates: list[ProgressUpdate], state: ProgressState | None = None) -> list[Scrobble]:
    found = []
    for u in updates:
        state = rules.apply_update(state, u, DEFAULT_POLICIES[u.item_type])
        if counted_play(u, state, DEFAULT_POLICIES[u.item_type]):
            found.append(scrobble_for_play(u, state))
    return found


def test_a_track_played_past_half_gives_exactly_one_scrobble_per_listen() -> None:
    first = listen(T0, TRACK_MS)
    second = listen(T0 + 10 * 60_000, TRACK_MS)
    found = hook_scrobbles(first + second)
    assert [s.started_at for s in found] == [T0, T0 + 10 * 60_000]
    s = found[0]
    assert s.source == "progress" and s.item_type == "track" and s.device_id == "phone"
    assert s.listened_ms * 100 >= 50 * TRACK_MS and s.listened_ms <= TRACK_MS // 2 + 10_000
    assert hook_scrobbles(listen(T0, TRACK_MS // 2 - 10_000)) == []


def test_episodes_and_audiobooks_never_scrobble_from_progress() -> None:
    for item_type in ("episode", "audiobook"):
        updates = [upd(p, T0 + p, item_type=item_type, duration_ms=3_600_000)
                   for p in range(0, 3_600_001, 60_000)]
        assert hook_scrobbles(updates) == []


def test_a_stale_update_after_the_crossing_is_not_a_crossing() -> None:
    updates = listen(T0, TRACK_MS)
    state = rules.apply_updates(None, updates, DEFAULT_POLICIES["track"])
    late = upd(150_000, T0 + 1000)  # an offline replay from long before
    assert hook_scrobbles([late], state) == []


def test_an_update_repeating_the_crossing_time_gives_the_same_listen() -> None:
    updates = listen(T0, 100_000)  # the last one crosses 50 %
    found = hook_scrobbles([*updates, upd(100_000, T0 + 100_000)])
    assert len(found) == 2 and found[0].id == found[1].id  # the store's dedup makes it one record


Step = tuple[ProgressEvent, bool, int, int]


def updates_from(steps: list[Step]) -> list[ProgressUpdate]:
    """Each step: an event, whether it jumps (to ``target``) or plays on in real time for ``gap`` ms."""
    clock = T0
    position = 0
    updates = []
    for event, jump, target, gap in steps:
        clock += gap
        position = target if jump else min(position + gap, TRACK_MS)
        updates.append(upd(position, clock, event))
    return updates


# Mostly playing on (so that listens do reach their threshold), with every event and some jumps.
STEPS = st.lists(st.tuples(st.sampled_from([*PROGRESS_EVENTS, *["progress"] * 8]),
                           st.integers(0, 7).map(lambda n: n == 0), st.integers(0, TRACK_MS + 5000),
                           st.integers(1, 40_000)), max_size=80)


THREE_LISTENS: list[Step] = ([("start", True, 0, 1000)] + [("progress", False, 0, 20_000)] * 10) * 3


@given(STEPS, st.one_of(st.none(), st.randoms(use_true_random=False)))
@example(THREE_LISTENS, None)
@example(THREE_LISTENS, random.Random(3))
def test_hook_scrobbles_equal_counted_plays(steps: list[Step], shuffle: random.Random | None) -> None:
    """Whatever the events (with distinct event times; in order or in any arrival order), the distinct
    listens the hook reports are exactly the plays the progress rules count."""
    updates = updates_from(steps)
    if shuffle is not None:
        shuffle.shuffle(updates)
    found = hook_scrobbles(updates)
    final = rules.apply_updates(None, updates, DEFAULT_POLICIES["track"])
    plays = final.play_count if final is not None else 0
    assert len({s.id for s in found}) == len(found) == plays


def test_the_generator_above_reaches_plays() -> None:
    """Guard for the property's explicit example: its steps do make listens count (one per start)."""
    assert len(hook_scrobbles(updates_from(THREE_LISTENS))) == 3


# --- validation ---------------------------------------------------------------------------------------

def test_started_at_must_look_like_ms_and_not_be_in_the_future() -> None:
    now = T0
    scrobbles.check_started_at(now, now)
    scrobbles.check_started_at(now + scrobbles.MAX_CLOCK_SKEW_MS, now)
    scrobbles.check_started_at(scrobbles.MIN_STARTED_AT_MS, now)
    for bad in (now // 1000, 0, scrobbles.MIN_STARTED_AT_MS - 1, now + scrobbles.MAX_CLOCK_SKEW_MS + 1):
        with pytest.raises(ScrobbleRejected) as info:
            scrobbles.check_started_at(bad, now)
        assert info.value.field == "started_at"


def test_listened_is_bounded_by_the_duration() -> None:
    scrobbles.check_listened(0, 1000)
    scrobbles.check_listened(3 * 60_000 + 1000, 60_000)
    for bad in (-1, 3 * 60_000 + 1001):
        with pytest.raises(ScrobbleRejected) as info:
            scrobbles.check_listened(bad, 60_000)
        assert info.value.field == "listened_seconds"


# --- stats --------------------------------------------------------------------------------------------

TODAY = dt.date(2024, 3, 10)


def day(text: str) -> int:
    return scrobbles.date_day(dt.date.fromisoformat(text))


def test_days_are_utc_and_split_at_midnight() -> None:
    midnight = day("2024-03-10") * DAY_MS
    assert scrobbles.day_number(midnight - 1) == day("2024-03-09")
    assert scrobbles.day_number(midnight) == day("2024-03-10")
    assert scrobbles.day_date(day("2024-02-29")) == dt.date(2024, 2, 29)
    utc = dt.datetime(2024, 3, 10, tzinfo=dt.UTC).timestamp() * 1000
    assert utc == midnight


def test_stats_range_defaults_and_limits() -> None:
    assert stats_range(None, None, TODAY) == (day("2024-02-10"), day("2024-03-10"))
    assert stats_range("2024-01-01", None, TODAY) == (day("2024-01-01"), day("2024-01-30"))
    assert stats_range(None, "2024-01-30", TODAY) == (day("2024-01-01"), day("2024-01-30"))
    assert stats_range("2024-01-01", "2024-01-01", TODAY) == (day("2024-01-01"),) * 2
    assert stats_range("2024-01-01", "2024-12-31", TODAY) == (day("2024-01-01"), day("2024-12-31"))  # 366
    for raw_from, raw_to, field in (("2024-01-02", "2024-01-01", "to"), ("2023-12-31", "2024-12-31", "from"),
                                    ("2024-1-01", None, "from"), ("2024-02-30", None, "from"),
                                    (None, "yesterday", "to"), (None, "2024-03-10T00:00", "to"),
                                    ("٢٠٢٤-01-01", None, "from")):
        with pytest.raises(ScrobbleRejected) as info:
            stats_range(raw_from, raw_to, TODAY)
        assert info.value.field == field, (raw_from, raw_to)


def test_stats_range_at_the_ends_of_the_calendar_stops_at_the_edge() -> None:
    assert stats_range("9999-12-20", None, TODAY) == (day("9999-12-20"), day("9999-12-31"))
    assert stats_range(None, "0001-01-05", TODAY) == (day("0001-01-01"), day("0001-01-05"))


def test_day_totals_group_by_start_day_and_type() -> None:
    base = day("2024-03-01") * DAY_MS
    records = [
        scrobble(base + 1000, 60_000, item_type="track"),
        scrobble(base + 2000, 30_000, item_type="track", item_id="bbbbbbbbbbbbbbbb"),
        scrobble(base + DAY_MS - 1, 600_000, item_type="episode"),  # runs past midnight: counts on its start
        scrobble(base + DAY_MS, 5_000, item_type="audiobook"),
        scrobble(base + 5 * DAY_MS, 5_000, item_type="audiobook"),  # outside the range below
    ]
    first, last = day("2024-03-01"), day("2024-03-03")
    totals = day_totals(records, first, last)
    assert [(t.day - first, t.item_type, t.listened_ms, t.listens) for t in totals] == [
        (0, "episode", 600_000, 1), (0, "track", 90_000, 2), (1, "audiobook", 5_000, 1)]
    body = stats_json(totals, first, last)
    assert body["from"] == "2024-03-01" and body["to"] == "2024-03-03"
    days = body["days"]
    assert isinstance(days, list) and [d["date"] for d in days] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert days[0]["track"] == {"seconds": 90.0, "listens": 2}
    assert days[0]["total"] == {"seconds": 690.0, "listens": 3}
    assert days[2]["total"] == {"seconds": 0.0, "listens": 0}
    assert body["totals"] == {"track": {"seconds": 90.0, "listens": 2},
                              "episode": {"seconds": 600.0, "listens": 1},
                              "audiobook": {"seconds": 5.0, "listens": 1},
                              "total": {"seconds": 695.0, "listens": 4}}


@given(st.lists(st.tuples(st.integers(0, 40 * DAY_MS), st.integers(0, 10**7), st.sampled_from(ITEM_TYPES)),
                max_size=60),
       st.integers(0, 30), st.integers(0, 15))
def test_stats_totals_are_the_sum_of_the_listens_in_range(
        listens: list[tuple[int, int, ItemType]], first: int, span: int) -> None:
    base = day("2024-01-01") * DAY_MS
    records = [scrobble(base + offset, ms, item_type=t, item_id=f"{'a' * 15}{'bcdefghijk'[i % 10]}")
               for i, (offset, ms, t) in enumerate(listens)]
    first_day = day("2024-01-01") + first
    last_day = first_day + span
    body = stats_json(day_totals(records, first_day, last_day), first_day, last_day)
    inside = [r for r in records if first_day <= r.day <= last_day]
    assert body["totals"]["total"] == {"seconds": sum(r.listened_ms for r in inside) / 1000,  # type: ignore[index]
                                       "listens": len(inside)}
    assert len(body["days"]) == span + 1  # type: ignore[arg-type]


def test_scrobble_json_shape() -> None:
    body = scrobbles.scrobble_json(scrobble(listened_ms=61_500))
    assert body == {"id": f"{ITEM}-{T0}", "item_id": ITEM, "item_type": "track", "started_at": T0,
                    "listened_seconds": 61.5, "device_id": "phone", "source": "client", "recorded_at": T0 + 1,
                    "sent": False, "sent_at": None, "deliveries": {}}
    delivered = scrobble(deliveries=(Delivery("lastfm", "skipped", T0 + 3, "too old"),
                                     Delivery("listenbrainz", "sent", T0 + 9)))
    body = scrobbles.scrobble_json(delivered)
    assert (body["sent"], body["sent_at"]) == (True, T0 + 9)
    assert body["deliveries"] == {"lastfm": {"state": "skipped", "at": T0 + 3, "reason": "too old"},
                                  "listenbrainz": {"state": "sent", "at": T0 + 9, "reason": None}}


def test_delivery_encoding_round_trips_and_marks_bound_the_reason() -> None:
    for d in (Delivery("lastfm", "skipped", T0, "refused: a|b"), Delivery("listenbrainz", "sent", T0)):
        assert Delivery.decode(d.service, d.encode()) == d
    for service, raw in (("nope", "sent|1|"), ("lastfm", "lost|1|"), ("lastfm", "sent")):
        with pytest.raises(ValueError):
            Delivery.decode(service, raw)
    assert Mark("x", "skipped", "r" * 999).delivery("lastfm", T0).reason == "r" * scrobbles.MAX_REASON_CHARS
    assert scrobbles.queued_services("track") == scrobbles.SERVICES
    assert scrobbles.queued_services("episode") == scrobbles.queued_services("audiobook") == ()
