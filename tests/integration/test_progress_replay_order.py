"""Two instances replaying their journals into a restarted server, in either order, through the Lua
scripts on a real redis-server: each order equals the pure rules (``revenge.progress.replay``), and
both agree with the state before the crash on whether the item is there and whether it is hidden
(``tests/unit/test_journal_replay.py`` checks the same of the rules alone); and the reset tombstone
holds for writes made live as for replayed ones."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revenge.config import load_settings
from revenge.progress import replay
from revenge.progress.model import ProgressOp, ProgressState, ProgressUpdate
from revenge.progress.store_dragonfly import DragonflyStore
from tests.integration.test_progress_redis_vs_rules import ITEMS, T0, Model, S, _model_step, _same
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.unit.test_journal_replay import shared_histories


async def _two_instances(url: str, data_dir: Path, entries: list[ProgressUpdate | ProgressOp],
                         owner: list[int], saved: int, cuts: tuple[int, int]) -> list[ProgressState | None]:
    """The first ``saved`` entries made (the snapshot), then each instance's journal tail replayed, A
    first and B first: the server equals the rules each time, and both orders agree with what the
    state was before the crash on whether the item is there and hidden."""
    truth, _ = replay_made(entries)
    tails = [[e for n, e in enumerate(entries) if owner[n] == i and n >= cuts[i]] for i in (0, 1)]
    store = DragonflyStore(url, load_settings(None, env={}, data_dir=data_dir), key_guard=True,
                           journaled=True)
    await store.open()
    finals: list[ProgressState | None] = []
    try:
        for order in ((0, 1), (1, 0)):
            await store._redis.client().flushall()
            model: Model = {}
            for entry in entries[:saved]:
                if isinstance(entry, ProgressUpdate):
                    await store.apply_batch([entry])
                else:
                    await store.apply_op(entry)
                _model_step(model, entry, replayed=False)
            for instance in order:
                await store.replay(tails[instance])
                for entry in tails[instance]:
                    _model_step(model, entry, replayed=True)
            key = (entries[0].user_id, entries[0].item_id)
            got = await store.get(*key)
            _same(got, model.get(key, (None, replay.Seen()))[0], f"order {order}")
            assert (got is None) == (truth is None), order
            assert got is None or truth is None or got.hidden == truth.hidden, order
            finals.append(got)
    finally:
        await store.close()
    return finals


def replay_made(entries: list[ProgressUpdate | ProgressOp]) -> tuple[ProgressState | None, replay.Seen]:
    model: Model = {}
    for entry in entries:
        _model_step(model, entry, replayed=False)
    return model.get((entries[0].user_id, entries[0].item_id), (None, replay.Seen()))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=60)
@given(history=shared_histories(), data=st.data())
def test_two_instances_replaying_in_either_order_in_lua_equal_the_rules(
        redis_server: RedisServer, tmp_path: Path,  # noqa: F811
        history: tuple[list[ProgressUpdate | ProgressOp], list[int]], data: st.DataObject) -> None:
    entries, owner = history
    saved = data.draw(st.integers(0, len(entries)))
    cuts = (data.draw(st.integers(0, saved)), data.draw(st.integers(0, saved)))
    asyncio.run(_two_instances(redis_server.url, tmp_path, entries, owner, saved, cuts))


def test_a_replayed_hide_and_reset_leave_another_instances_newer_writes_in_lua(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """B hid the item and reset it before A's start and progress; restarted from a snapshot of before,
    A's journal replays first: B's replayed hide and reset, older, neither hide it nor take A's rows."""
    item = ITEMS[5]

    def update(at: int, event: str, device: str) -> ProgressUpdate:
        return ProgressUpdate("1", item[0], item[1], item[2], 90 * S, event, device, at, at)  # type: ignore[arg-type]

    def op(kind: str, at: int) -> ProgressOp:
        return ProgressOp(kind, "1", item[0], item[1], item[2], at, f"{at}-b")  # type: ignore[arg-type]

    old = update(T0 + 1, "progress", "old")
    entries: list[ProgressUpdate | ProgressOp] = [
        old, op("hidden", T0 + 2), op("reset", T0 + 3), update(T0 + 4, "start", "a"),
        update(T0 + 5, "progress", "a")]
    finals = asyncio.run(_two_instances(redis_server.url, tmp_path, entries, [0, 1, 1, 0, 0], 0, (0, 0)))
    for state in finals:
        assert state is not None and not state.hidden and set(state.devices) == {"a"}


def test_a_write_received_before_another_instances_reset_stays_out_live_too(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """As when replayed: an update received (by this instance's clock) before the reset's time."""
    item_id, item_type, duration = ITEMS[5]
    before = ProgressUpdate("1", item_id, item_type, duration, 90 * S, "progress", "a", T0 + 10, T0 + 10)
    after = dataclasses.replace(before, event_ts_ms=T0 + 30, received_ms=T0 + 30)

    async def run() -> tuple[ProgressState, ProgressState | None, ProgressState | None]:
        store = DragonflyStore(redis_server.url, load_settings(None, env={}, data_dir=tmp_path),
                               key_guard=True, journaled=True)
        await store.open()
        try:
            await store.apply_op(ProgressOp("reset", "1", item_id, item_type, 0, T0 + 20, f"{T0 + 20}-b"))
            (answer,) = await store.apply_batch([before])
            gone = await store.get("1", item_id)
            await store.apply_batch([after])
            return answer, gone, await store.get("1", item_id)
        finally:
            await store.close()

    answer, gone, back = asyncio.run(run())
    assert gone is None and answer.version == 0 and answer.devices == {}
    assert back is not None and back.position_ms == 90 * S and set(back.devices) == {"a"}
