"""The Lua scripts against the pure rules: random operation streams, applied through ``rules`` in Python
and through ``DragonflyStore`` on a real redis-server, must give identical states after every step.

This is what keeps ``lua/*.lua`` and ``rules.py`` in step: the streams mix several devices (sometimes
more than ``MAX_DEVICES_PER_ITEM``, with non-ASCII ids, so eviction order is checked), skewed and
shuffled event times (offline replays, clocks ahead), every event type, positions at and around every
completion/play threshold, odd playback rates, mark played/unplayed, hide/show and reset, and batches
of random sizes. The store runs with the key guard on, so an undeclared key would fail the test too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revenge.config import load_settings
from revenge.library.model import ITEM_TYPES, ItemType
from revenge.progress import replay, rules
from revenge.progress.model import (
    DEFAULT_POLICIES,
    MAX_DEVICES_PER_ITEM,
    PROGRESS_EVENTS,
    ProgressOp,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.store_dragonfly import DragonflyStore
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)

S = 1000
MIN = 60 * S
T0 = 1_700_000_000_000

# (item id, type, duration): durations at the rules' edges — a track too short to ever count, one
# exactly at the minimum, a normal one (50 % rule), a long one (240 s rule), an episode shorter than
# the 30 s remaining-time threshold, one where 95 % and 30 s remaining coincide, and long ones.
ITEMS: tuple[tuple[str, ItemType, int], ...] = (
    ("t" * 15 + "a", "track", 20 * S),
    ("t" * 15 + "b", "track", 30 * S),
    ("t" * 15 + "c", "track", 4 * MIN),
    ("t" * 15 + "d", "track", 15 * MIN),
    ("e" * 15 + "a", "episode", 25 * S),
    ("e" * 15 + "b", "episode", 10 * MIN),
    ("e" * 15 + "c", "episode", 60 * MIN),
    ("b" * 15 + "a", "audiobook", 10 * 60 * MIN),
    ("b" * 15 + "b", "audiobook", 40 * S),
)
USERS = ("1", "2")
FEW_DEVICES = ("phone", "laptop", "car")
MANY_DEVICES = (*FEW_DEVICES, "Zed", "zed", "ä-tablet", "é", "watch", *(f"d{i:02}" for i in range(14)))
RATES = (1.0, 1.0, 0.5, 0.75, 1.1, 1.25, 1.5, 2.0, 3.0)


def _positions(duration: int) -> st.SearchStrategy[int]:
    edges = [0, 1, 4_999, 5_000, 5_001, 10_000, 29_999, 30_000, 30_001,
             duration // 2 - 1, duration // 2, duration // 2 + 1,
             duration * 95 // 100 - 1, duration * 95 // 100, duration * 95 // 100 + 1,
             duration - 30_001, duration - 30_000, duration - 29_999,
             duration - 1, duration, duration + 7_000]
    return st.one_of(st.sampled_from(edges), st.integers(0, duration + 10_000))


@dataclass(frozen=True)
class Op:
    """One step: an update, or a user action (played, unplayed, hidden, shown, reset) at ``now``."""

    kind: str
    user: str
    item: int
    now: int
    update: ProgressUpdate | None = None


@st.composite
def op_streams(draw: st.DrawFn) -> list[Op]:
    # A few (user, item) keys per stream, so that updates collide on a key (and on a device, and on an
    # event time) often enough to exercise every ordering tie.
    devices = draw(st.sampled_from([FEW_DEVICES[:1], FEW_DEVICES, FEW_DEVICES, MANY_DEVICES]))
    indexes = draw(st.lists(st.integers(0, len(ITEMS) - 1), min_size=1, max_size=3, unique=True))
    users = draw(st.sampled_from([USERS[:1], USERS]))
    clock = T0
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 60))):
        clock += draw(st.sampled_from([0, 0, 1, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000]))
        user = draw(st.sampled_from(users))
        index = draw(st.sampled_from(indexes))
        kind = draw(st.sampled_from(["update"] * 12 + ["played", "unplayed", "hidden", "shown", "reset"]))
        if kind != "update":
            # Another instance's server clock may be a little behind this one's.
            ops.append(Op(kind, user, index, clock - draw(st.sampled_from([0, 0, 0, 1, 60_000]))))
            continue
        item_id, item_type, duration = ITEMS[index]
        # Client clocks: exact, behind (an offline replay), far behind, or ahead (clamped to receipt).
        skew = draw(st.sampled_from([0, 0, 0, -1, -draw(st.integers(1, 3_600_000)), -86_400_000, 3_600_000]))
        received = clock
        update = ProgressUpdate(
            user_id=user, item_id=item_id, item_type=item_type, duration_ms=duration,
            position_ms=rules.clamp_position(draw(_positions(duration)), duration),
            event=draw(st.sampled_from(PROGRESS_EVENTS)), device_id=draw(st.sampled_from(devices)),
            event_ts_ms=rules.clamp_event_time(clock + skew, received), received_ms=received,
            playback_rate=draw(st.sampled_from(RATES)),
        )
        ops.append(Op("update", user, index, clock, update))
    return ops


def _same(got: ProgressState | None, want: ProgressState | None, where: str) -> None:
    assert (got is None) == (want is None), where
    if got is None or want is None:
        return
    assert dataclasses.replace(got, devices={}) == dataclasses.replace(want, devices={}), where
    assert dict(got.devices) == dict(want.devices), where


def _apply_action(state: ProgressState | None, op: Op) -> ProgressState | None:
    item_id, item_type, duration = ITEMS[op.item]
    if op.kind == "played":
        return rules.mark_played(state, op.user, item_id, item_type, duration, op.now)
    if op.kind == "unplayed":
        return rules.mark_unplayed(state, op.user, item_id, item_type, duration, op.now)
    if op.kind in ("hidden", "shown"):
        return rules.set_hidden(state, op.user, item_id, item_type, duration, op.kind == "hidden", op.now)
    assert op.kind == "reset"
    return None


async def _run_action(store: DragonflyStore, op: Op) -> ProgressState | bool:
    item_id, item_type, duration = ITEMS[op.item]
    if op.kind == "played":
        return await store.mark_played(op.user, item_id, item_type, duration, op.now)
    if op.kind == "unplayed":
        return await store.mark_unplayed(op.user, item_id, item_type, duration, op.now)
    if op.kind in ("hidden", "shown"):
        return await store.set_hidden(op.user, item_id, item_type, duration, op.kind == "hidden", op.now)
    return await store.reset(op.user, item_id)


async def _check_stream(url: str, data_dir: Path, ops: list[Op], cuts: list[int]) -> None:
    store = DragonflyStore(url, load_settings(None, env={}, data_dir=data_dir), key_guard=True)
    await store.open()
    try:
        expected: dict[tuple[str, str], ProgressState | None] = {}
        batch: list[ProgressUpdate] = []

        async def check_continue(user: str, item_type: ItemType | None, limit: int, now: int) -> None:
            states = [s for (u, _), s in expected.items() if u == user and s is not None]
            want = rules.select_continue(states, item_type, limit, now)
            got = await store.continue_listening(user, item_type, limit, now)
            assert [s.item_id for s in got] == [s.item_id for s in want], (user, item_type, limit, now)

        async def flush() -> None:
            got = await store.apply_batch(batch)
            for n, (u, state) in enumerate(zip(batch, got, strict=True)):
                key = (u.user_id, u.item_id)
                expected[key] = rules.apply_update(expected.get(key), u, DEFAULT_POLICIES[u.item_type])
                # A write's answer carries no device rows; they are checked through get() below.
                assert state.devices == {}
                want = expected[key]
                _same(state, None if want is None else dataclasses.replace(want, devices={}),
                      f"update {n} of a batch of {len(batch)}: {u}")
            for user in {u.user_id for u in batch}:
                await check_continue(user, None, 100, max(u.received_ms for u in batch))
            batch.clear()

        for step, op in enumerate(ops):
            if op.update is not None:
                batch.append(op.update)
                if step in cuts:
                    await flush()
                continue
            if batch:
                await flush()
            key = (op.user, ITEMS[op.item][0])
            existed = expected.get(key) is not None
            result = await _run_action(store, op)
            expected[key] = _apply_action(expected.get(key), op)
            if op.kind == "reset":
                assert result is existed
            else:
                assert isinstance(result, ProgressState)
                _same(result, expected[key], f"{op.kind} at step {step}")
            await check_continue(op.user, None, 100, op.now)
        if batch:
            await flush()

        for (user, item_id), state in expected.items():
            _same(await store.get(user, item_id), state, f"final state of {user}/{item_id}")
        now = max(op.now for op in ops)
        for user in USERS:
            for item_type in (None, *ITEM_TYPES):
                for limit in (1, 2, 100):
                    await check_continue(user, item_type, limit, now)
    finally:
        await store.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=op_streams(), cuts=st.lists(st.integers(0, 60), max_size=12))
def test_lua_scripts_equal_the_pure_rules(redis_server: RedisServer, tmp_path: Path,  # noqa: F811
                                          ops: list[Op], cuts: list[int]) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    asyncio.run(_check_stream(redis_server.url, tmp_path, ops, sorted(set(cuts))))


def test_device_eviction_order_matches_python(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """More devices than the bound, all at the same event time: the one dropped is the smallest id in
    code-point order (Python's), whatever the server's locale would say ("Zed" < "zed" < "ä" < "é")."""
    item_id, item_type, duration = ITEMS[6]
    ids = [*(f"z{i:02}" for i in range(MAX_DEVICES_PER_ITEM - 3)), "é", "ä-tablet", "zed", "Zed"]
    updates = [ProgressUpdate(user_id="1", item_id=item_id, item_type=item_type, duration_ms=duration,
                              position_ms=1000 * i, event="progress", device_id=d, event_ts_ms=T0,
                              received_ms=T0 + i) for i, d in enumerate(ids)]
    ops = [Op("update", "1", 6, T0 + i, u) for i, u in enumerate(updates)]
    asyncio.run(_check_stream(redis_server.url, tmp_path, ops, []))
    want = rules.apply_updates(None, updates, DEFAULT_POLICIES[item_type])
    assert want is not None and "Zed" not in want.devices and len(want.devices) == MAX_DEVICES_PER_ITEM


def test_device_evicted_in_a_later_call_is_gone_from_the_server(redis_server: RedisServer,  # noqa: F811
                                                                tmp_path: Path) -> None:
    """The oldest device is dropped by a later call than the one that wrote it: the stored rows (read
    back with ``get``) lose it too, not only the reply."""
    item_id, item_type, duration = ITEMS[6]
    updates = [ProgressUpdate(user_id="1", item_id=item_id, item_type=item_type, duration_ms=duration,
                              position_ms=1000 * i, event="progress", device_id=f"dev{i:02}",
                              event_ts_ms=T0 + i, received_ms=T0 + i)
               for i in range(MAX_DEVICES_PER_ITEM + 2)]
    ops = [Op("update", "1", 6, T0 + i, u) for i, u in enumerate(updates)]
    asyncio.run(_check_stream(redis_server.url, tmp_path, ops, list(range(len(ops)))))
    want = rules.apply_updates(None, updates, DEFAULT_POLICIES[item_type])
    assert want is not None and "dev00" not in want.devices and "dev01" not in want.devices


# --- journaled actions and replays (replay.timed_update, replay.replay_op) ------------------------------

def _journal_entry(op: Op, n: int) -> ProgressUpdate | ProgressOp:
    """A stream step as the journaled store makes it: an update as it is, an action with its id."""
    if op.update is not None:
        return op.update
    item_id, item_type, duration = ITEMS[op.item]
    return ProgressOp(op.kind, op.user, item_id, item_type, duration, op.now, f"{op.now}-{n:04x}")  # type: ignore[arg-type]


Model = dict[tuple[str, str], tuple[ProgressState | None, replay.Seen]]


def _model_step(model: Model, entry: ProgressUpdate | ProgressOp, replayed: bool) -> None:
    key = (entry.user_id, entry.item_id)
    state, seen = model.get(key, (None, replay.Seen()))
    if isinstance(entry, ProgressUpdate):
        policy = DEFAULT_POLICIES[entry.item_type]
        state, seen = replay.timed_update(state, seen, entry, policy)  # made or replayed alike
    elif replayed:
        state, seen = replay.replay_op(state, seen, entry)
    else:
        state, seen = replay.made_op(state, seen, entry)
    model[key] = (state, seen)


async def _check_journaled_stream(url: str, data_dir: Path, ops: list[Op], plan: list[int]) -> None:
    """Steps made as the journaled store makes them or replayed (an entry not made yet: another
    instance's journal; earlier entries again, in any order): the server equals ``rules`` after each."""
    store = DragonflyStore(url, load_settings(None, env={}, data_dir=data_dir), key_guard=True,
                           journaled=True)
    await store.open()
    try:
        model: Model = {}
        made: list[ProgressUpdate | ProgressOp] = []
        for n, (op, how) in enumerate(zip(ops, plan * (len(ops) // max(1, len(plan)) + 1), strict=False)):
            entry = _journal_entry(op, n)
            if how % 3 == 0:
                again = [made[(how * k + n) % len(made)] for k in range(how % 7)] if made else []
                await store.replay([*again, entry])
                for e in (*again, entry):
                    _model_step(model, e, replayed=True)
            elif isinstance(entry, ProgressUpdate):
                await store.apply_batch([entry])
                _model_step(model, entry, replayed=False)
            else:
                await store.apply_op(entry)
                _model_step(model, entry, replayed=False)
            made.append(entry)
            key = (entry.user_id, entry.item_id)
            _same(await store.get(*key), model[key][0], f"step {n}: {entry}")
        tail = made[len(made) // 2:]
        await store.replay(tail)  # a whole journal tail replayed over the state
        for e in tail:
            _model_step(model, e, replayed=True)
        for (user, item_id), (state, _) in model.items():
            _same(await store.get(user, item_id), state, f"final state of {user}/{item_id}")
    finally:
        await store.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=op_streams(), plan=st.lists(st.integers(0, 20), min_size=1, max_size=20))
def test_replays_in_lua_equal_the_pure_rules(redis_server: RedisServer, tmp_path: Path,  # noqa: F811
                                             ops: list[Op], plan: list[int]) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    asyncio.run(_check_journaled_stream(redis_server.url, tmp_path, ops, plan))

