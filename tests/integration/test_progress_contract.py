"""The ProgressStore contract (revenge/progress/store.py), run against every backend.

"sqlite" is the embedded store on a temp file; "redis" is the Dragonfly store against a real
redis-server started on a free port by tests/redisfix.py. The central check: whatever a store does
internally, its states equal the pure rules (``rules.apply_updates``) folded over the same updates.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.config import Settings, load_settings
from revenge.errors import StoreUnavailable
from revenge.progress import rules
from revenge.progress.model import (
    DEFAULT_POLICIES,
    PROGRESS_EVENTS,
    ProgressEvent,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.store import ProgressStore, open_store
from tests.redisfix import redis_server  # noqa: F401  (fixture used by the "redis" param)

MIN = 60_000
T0 = 1_700_000_000_000
NOW = T0 + 3_600_000
ITEMS = [f"{c * 16}" for c in "abcdefgh"]
TYPES = {"a" * 16: "episode", "b" * 16: "audiobook", "c" * 16: "track", "d" * 16: "track",
         "e" * 16: "episode", "f" * 16: "audiobook", "g" * 16: "track", "h" * 16: "episode"}
DURATIONS = {"episode": 60 * MIN, "audiobook": 600 * MIN, "track": 4 * MIN}

HAVE_DRAGONFLY = importlib.util.find_spec("revenge.progress.store_dragonfly") is not None


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(None, env={}, data_dir=data_dir, **overrides)


@pytest.fixture(params=["sqlite", "redis"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "redis":
        if not HAVE_DRAGONFLY:
            pytest.skip("revenge/progress/store_dragonfly.py is not written yet")
        server = request.getfixturevalue("redis_server")
        return make_settings(tmp_path / "data", store=server.url)
    return make_settings(tmp_path / "data")


@pytest.fixture
async def progress_store(store_settings: Settings) -> AsyncIterator[ProgressStore]:
    store = open_store(store_settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def upd(item_id: str, position_ms: int, ts: int, *, user: str = "1", device: str = "phone",
        event: ProgressEvent = "progress", received: int | None = None, rate: float = 1.0) -> ProgressUpdate:
    item_type = TYPES[item_id]
    duration = DURATIONS[item_type]
    received_ms = received if received is not None else ts
    return ProgressUpdate(
        user_id=user, item_id=item_id, item_type=item_type,  # type: ignore[arg-type]
        duration_ms=duration, position_ms=rules.clamp_position(position_ms, duration), event=event,
        device_id=device, event_ts_ms=rules.clamp_event_time(ts, received_ms), received_ms=received_ms,
        playback_rate=rate,
    )


def expected_fold(updates: list[ProgressUpdate]) -> list[ProgressState]:
    """What the pure rules say each update's resulting state is."""
    current: dict[tuple[str, str], ProgressState | None] = {}
    out = []
    for u in updates:
        key = (u.user_id, u.item_id)
        state = rules.apply_update(current.get(key), u, DEFAULT_POLICIES[u.item_type])
        current[key] = state
        out.append(state)
    return out


def same(a: ProgressState | None, b: ProgressState | None) -> None:
    assert a is not None and b is not None
    assert dataclasses.replace(a, devices={}) == dataclasses.replace(b, devices={})
    assert dict(a.devices) == dict(b.devices)


def written(got: ProgressState, want: ProgressState | None) -> None:
    """``got`` is what apply_batch answered for an update whose resulting state is ``want``: the same
    state without device rows (write answers leave them out)."""
    assert got.devices == {}
    assert want is not None
    same(got, dataclasses.replace(want, devices={}))


async def test_ping_and_empty_batch(progress_store: ProgressStore) -> None:
    await progress_store.ping()
    assert await progress_store.apply_batch([]) == []
    assert await progress_store.get("1", ITEMS[0]) is None


async def test_batch_returns_the_state_after_each_update_in_order(progress_store: ProgressStore) -> None:
    item = ITEMS[0]
    updates = [upd(item, 1000 * i, T0 + 1000 * i) for i in range(1, 6)]
    states = await progress_store.apply_batch(updates)
    assert [s.position_ms for s in states] == [1000, 2000, 3000, 4000, 5000]
    assert [s.version for s in states] == [1, 2, 3, 4, 5]
    want = expected_fold(updates)
    for got, expected in zip(states, want, strict=True):
        written(got, expected)
    same(await progress_store.get("1", item), want[-1])


async def test_values_round_trip_exactly(progress_store: ProgressStore) -> None:
    """Integers past cjson's 14 significant digits and a rate with no short binary form come back exact,
    from the write answer and from a read (the Redis store's replies are JSON made in Lua)."""
    duration = 123_456_789_012_345  # ms: 3 900 years, past what cjson writes exactly
    update = ProgressUpdate(user_id="1", item_id=ITEMS[0], item_type="episode", duration_ms=duration,
                            position_ms=duration - 1, event="progress", device_id="phone",
                            event_ts_ms=T0 + 123, received_ms=T0 + 456, playback_rate=1.1)
    (state,) = await progress_store.apply_batch([update])
    want = expected_fold([update])[0]
    written(state, want)
    assert state.duration_ms == duration and state.position_ms == duration - 1
    assert type(state.position_ms) is int and state.playback_rate == 1.1
    same(await progress_store.get("1", ITEMS[0]), want)


async def test_store_equals_the_pure_rules(progress_store: ProgressStore) -> None:
    """Random mixed batches (several users, items of every type, devices with skewed clocks, all
    events, offline replays) give exactly the states the pure rules give."""
    rng = random.Random(4)
    updates: list[ProgressUpdate] = []
    clock = T0
    for _ in range(600):
        clock += rng.randrange(0, 20_000)
        item = rng.choice(ITEMS)
        duration = DURATIONS[TYPES[item]]
        skew = rng.choice([0, 0, 0, -3_600_000, 3_600_000, -rng.randrange(0, 86_400_000)])
        position = rng.choice([rng.randrange(0, duration + 5000), 0, duration, duration - 10_000])
        updates.append(upd(item, position, clock + skew, user=rng.choice(["1", "2"]),
                           device=rng.choice(["phone", "laptop", "car"]), event=rng.choice(PROGRESS_EVENTS),
                           received=clock, rate=rng.choice([1.0, 1.5, 0.75])))
    want = expected_fold(updates)
    got: list[ProgressState] = []
    for start in range(0, len(updates), 97):  # batches of uneven size
        got.extend(await progress_store.apply_batch(updates[start:start + 97]))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        written(g, w)
    final = {(w.user_id, w.item_id): w for w in want}
    for (user, item), state in final.items():
        same(await progress_store.get(user, item), state)


async def test_stale_update_moves_only_its_device_row(progress_store: ProgressStore) -> None:
    item = ITEMS[0]
    await progress_store.apply_batch([upd(item, 10 * MIN, T0, device="phone"),
                                      upd(item, 20 * MIN, T0 + 11 * MIN, device="laptop")])
    (state,) = await progress_store.apply_batch([upd(item, 12 * MIN, T0 + 2 * MIN, device="phone",
                                                     received=T0 + 12 * MIN)])
    assert state.position_ms == 20 * MIN and state.device_id == "laptop"
    stored = await progress_store.get("1", item)
    assert stored is not None
    assert stored.position_ms == 20 * MIN
    assert stored.devices["phone"].position_ms == 12 * MIN
    assert stored.devices["laptop"].position_ms == 20 * MIN


async def test_large_batch(progress_store: ProgressStore) -> None:
    updates = [upd(ITEMS[i % 8], 1000 * i, T0 + i, user=str(i % 50)) for i in range(3000)]
    states = await progress_store.apply_batch(updates)
    assert len(states) == 3000
    for g, w in zip(states, expected_fold(updates), strict=True):
        written(g, w)


async def test_users_are_isolated(progress_store: ProgressStore) -> None:
    item = ITEMS[0]
    await progress_store.apply_batch([upd(item, 5 * MIN, T0, user="1"), upd(item, 7 * MIN, T0, user="2")])
    one, two = await progress_store.get("1", item), await progress_store.get("2", item)
    assert one is not None and two is not None
    assert (one.position_ms, two.position_ms) == (5 * MIN, 7 * MIN)
    assert await progress_store.reset("2", item) is True
    assert await progress_store.get("2", item) is None
    assert await progress_store.get("1", item) is not None


async def test_mark_played_unplayed_hidden_reset(progress_store: ProgressStore) -> None:
    item = ITEMS[0]
    duration = DURATIONS["episode"]
    (before,) = await progress_store.apply_batch([upd(item, 10 * MIN, T0)])
    before = await progress_store.get("1", item)  # with its device row, as the actions return it
    played = await progress_store.mark_played("1", item, "episode", duration, NOW)
    same(played, rules.mark_played(before, "1", item, "episode", duration, NOW))
    # An offline update from before the mark does not undo it.
    (after,) = await progress_store.apply_batch([upd(item, 11 * MIN, T0 + 1000, received=NOW + 1)])
    assert after.completed and after.position_ms == duration
    after = await progress_store.get("1", item)
    unplayed = await progress_store.mark_unplayed("1", item, "episode", duration, NOW + 2)
    same(unplayed, rules.mark_unplayed(after, "1", item, "episode", duration, NOW + 2))
    hidden = await progress_store.set_hidden("1", item, "episode", duration, True, NOW + 3)
    same(hidden, rules.set_hidden(unplayed, "1", item, "episode", duration, True, NOW + 3))
    same(await progress_store.get("1", item), hidden)
    shown = await progress_store.set_hidden("1", item, "episode", duration, False, NOW + 4)
    assert not shown.hidden and shown.version == hidden.version + 1
    assert await progress_store.reset("1", item) is True
    assert await progress_store.reset("1", item) is False
    assert await progress_store.get("1", item) is None
    # On an item never played, the actions create the state.
    fresh = await progress_store.mark_played("1", ITEMS[1], "audiobook", DURATIONS["audiobook"], NOW)
    same(fresh, rules.mark_played(None, "1", ITEMS[1], "audiobook", DURATIONS["audiobook"], NOW))
    hidden_fresh = await progress_store.set_hidden("1", ITEMS[2], "track", DURATIONS["track"], True, NOW)
    assert hidden_fresh.hidden and hidden_fresh.version == 1
    same(await progress_store.get("1", ITEMS[2]), hidden_fresh)


async def test_continue_listening(progress_store: ProgressStore) -> None:
    now = NOW
    old = now - rules.CONTINUE_MAX_AGE_MS - 1
    await progress_store.apply_batch([
        upd("a" * 16, 5 * MIN, now - 5000),             # episode, started
        upd("b" * 16, 50 * MIN, now - 1000),            # audiobook, newest
        upd("c" * 16, 2 * MIN, now - 3000),             # track
        upd("e" * 16, 29_000, now - 2000),              # episode, not started (< 30 s)
        upd("h" * 16, 59 * MIN, now - 4000),            # episode, completed
        upd("f" * 16, 10 * MIN, old, received=old),     # audiobook, too old
        upd("g" * 16, 3 * MIN, now - 6000),             # track, hidden below
        upd("a" * 16, 6 * MIN, now - 500, user="2"),    # another user's
    ])
    await progress_store.set_hidden("1", "g" * 16, "track", DURATIONS["track"], True, now)
    picked = await progress_store.continue_listening("1", None, 20, now)
    assert [s.item_id[0] for s in picked] == ["b", "c", "a"]
    assert [s.item_id[0] for s in await progress_store.continue_listening("1", "episode", 20, now)] == ["a"]
    assert [s.item_id[0] for s in await progress_store.continue_listening("1", None, 2, now)] == ["b", "c"]
    assert await progress_store.continue_listening("3", None, 20, now) == []
    # Unhide → back in the list; a newer start also unhides.
    await progress_store.set_hidden("1", "g" * 16, "track", DURATIONS["track"], False, now)
    assert "g" in [s.item_id[0] for s in await progress_store.continue_listening("1", "track", 20, now)]
    # Replayed to the end → completed → out; reset → out.
    await progress_store.apply_batch([upd("b" * 16, 600 * MIN, now)])
    await progress_store.reset("1", "c" * 16)
    assert [s.item_id[0] for s in await progress_store.continue_listening("1", None, 20, now)] == ["a", "g"]


async def test_track_play_counting_through_the_store(progress_store: ProgressStore) -> None:
    item = "c" * 16  # a 4-minute track: a play at 2:00 heard
    listen = [upd(item, 0, T0, event="start")]
    listen += [upd(item, 10_000 * i, T0 + 10_000 * i) for i in range(1, 25)]
    await progress_store.apply_batch(listen)
    later = 10 * MIN
    second = [dataclasses.replace(u, event_ts_ms=u.event_ts_ms + later, received_ms=u.received_ms + later)
              for u in listen]
    await progress_store.apply_batch(second)
    state = await progress_store.get("1", item)
    assert state is not None and state.play_count == 2 and state.completed


def heard(item: str, start: int, user: str = "1") -> list[ProgressUpdate]:
    """A listen of a 4-minute track from ``start``, heard long enough to count as a play."""
    return [upd(item, 0, start, event="start", user=user)] + [
        upd(item, 10_000 * i, start + 10_000 * i, user=user) for i in range(1, 14)]


async def test_played_lists_by_last_play_and_by_play_count(progress_store: ProgressStore) -> None:
    c, d, g, a = "c" * 16, "d" * 16, "g" * 16, "a" * 16
    await progress_store.apply_batch(heard(c, T0) + heard(c, T0 + 10 * MIN) + heard(d, T0 + 20 * MIN))
    await progress_store.apply_batch([upd(g, 5_000, T0 + 30 * MIN, event="start"),  # started, not a play
                                      upd(a, 5 * MIN, T0 + 40 * MIN)])  # an episode: another type
    await progress_store.apply_batch(heard(g, T0, user="2"))  # another user's
    recent = await progress_store.played("1", "track", "recent", 10)
    assert [(p.item_id, p.play_count) for p in recent] == [(g, 0), (d, 1), (c, 2)]
    assert recent[1].last_played_at == T0 + 20 * MIN + 13 * 10_000
    frequent = await progress_store.played("1", "track", "frequent", 10)
    assert [(p.item_id, p.play_count) for p in frequent] == [(c, 2), (d, 1)]
    assert frequent[0].last_played_at == T0 + 10 * MIN + 13 * 10_000
    assert [p.item_id for p in await progress_store.played("1", "track", "recent", 2)] == [g, d]
    assert [p.item_id for p in await progress_store.played("1", "episode", "recent", 10)] == [a]
    assert [p.item_id for p in await progress_store.played("2", "track", "frequent", 10)] == [g]
    assert await progress_store.played("3", "track", "recent", 10) == []
    # A play moves an item up; a reset takes it out of both.
    await progress_store.apply_batch(heard(d, T0 + 50 * MIN) + heard(d, T0 + 60 * MIN))
    assert [p.item_id for p in await progress_store.played("1", "track", "frequent", 10)] == [d, c]
    assert [p.item_id for p in await progress_store.played("1", "track", "recent", 10)] == [d, g, c]
    await progress_store.reset("1", d)
    assert [p.item_id for p in await progress_store.played("1", "track", "frequent", 10)] == [c]
    assert [p.item_id for p in await progress_store.played("1", "track", "recent", 10)] == [g, c]


async def test_state_survives_reopening(store_settings: Settings) -> None:
    updates = [upd(ITEMS[i % 3], 1000 * i, T0 + i, device=f"d{i % 4}") for i in range(50)]
    first = open_store(store_settings)
    await first.open()
    try:
        await first.apply_batch(updates)
    finally:
        await first.close()
    second = open_store(store_settings)
    await second.open()
    try:
        for item in ITEMS[:3]:
            last = [s for s in expected_fold(updates) if s.item_id == item][-1]
            same(await second.get("1", item), last)
    finally:
        await second.close()


async def test_closed_store_is_unavailable(store_settings: Settings) -> None:
    store = open_store(store_settings)
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailable):
        await store.apply_batch([upd(ITEMS[0], 1000, T0)])

