"""The play queue's pure rules (revenge/playback/queue.py): every operation, next/previous under each
repeat mode, shuffle and its undo, bounds; and properties over random operation sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.playback import queue as q
from revenge.playback.queue import (
    EMPTY,
    Append,
    Clear,
    InsertNext,
    Move,
    Next,
    Previous,
    Queue,
    QueueError,
    QueueTooLarge,
    Remove,
    Repeat,
    Replace,
    SetCurrent,
    Shuffle,
    Unshuffle,
)

A, B, C, D, E = (c * 16 for c in "abcde")


def with_items(*items: str, current: int | None = 0) -> Queue:
    """A queue of ``items`` with ``current`` (``None``: before the first entry)."""
    return Queue(items=tuple(items), current=current)


def test_change_bumps_the_version_once_and_records_who_and_when() -> None:
    changed = q.change(EMPTY, [Append((A, B)), SetCurrent(1, 5000)], "phone", 1234)
    assert (changed.version, changed.changed_by, changed.changed_at) == (1, "phone", 1234)
    assert changed.entries == (A, B) and changed.current == 1 and changed.position_ms == 5000
    assert changed.current_item == B


def test_an_invalid_op_names_its_field_and_changes_nothing() -> None:
    queue = with_items(A, B)
    with pytest.raises(QueueError) as caught:
        q.change(queue, [Append((C,)), Remove(7, field="ops[1]")], "phone", 1)
    assert caught.value.field == "ops[1].index"
    with pytest.raises(QueueError) as caught:
        q.apply(queue, Move(0, 2, field="ops[0]"))
    assert caught.value.field == "ops[0].to"
    with pytest.raises(QueueError) as caught:
        q.apply(EMPTY, SetCurrent(0, field="ops[3]"))
    assert caught.value.field == "ops[3].index"
    with pytest.raises(QueueError) as caught:
        q.apply(EMPTY, Replace((A,), 1))
    assert caught.value.field == "current_index"


def test_bounds_on_entries_and_history() -> None:
    full = q.apply(EMPTY, Replace(tuple([A] * q.MAX_ENTRIES)))
    for op in (Append((B,), "ops[0]"), InsertNext((B,), "ops[0]")):
        with pytest.raises(QueueTooLarge) as caught:
            q.apply(full, op)
        assert caught.value.field == "ops[0].items"
    with pytest.raises(QueueTooLarge):
        q.apply(EMPTY, Replace(tuple([A] * (q.MAX_ENTRIES + 1))))
    queue = q.apply(q.apply(EMPTY, Replace(tuple(f"{i:016d}" for i in range(80)))), Repeat("all"))
    for _ in range(120):
        queue = q.apply(queue, Next())
    assert len(queue.history) == q.MAX_HISTORY
    assert queue.history[-1] == f"{(120 - 1) % 80:016d}"


def test_insert_next_goes_after_the_current_entry_or_first_before_any() -> None:
    assert q.apply(with_items(A, B, current=0), InsertNext((C, D))).entries == (A, C, D, B)
    assert q.apply(with_items(A, B, current=None), InsertNext((C,))).entries == (C, A, B)
    assert q.apply(EMPTY, InsertNext((C,))).entries == (C,)


def test_move_keeps_the_current_entry_current() -> None:
    queue = with_items(A, B, C, D, current=1)
    moved = q.apply(queue, Move(1, 3))
    assert moved.entries == (A, C, D, B) and moved.current_item == B
    moved = q.apply(queue, Move(3, 0))
    assert moved.entries == (D, A, B, C) and moved.current_item == B
    moved = q.apply(queue, Move(0, 2))
    assert moved.entries == (B, C, A, D) and moved.current_item == B


def test_remove_the_current_makes_the_next_current_and_clear_empties() -> None:
    queue = q.apply(with_items(A, B, C, current=1), SetCurrent(1, 9000))
    removed = q.apply(queue, Remove(1))
    assert removed.entries == (A, C) and removed.current_item == C and removed.position_ms == 0
    assert q.apply(queue, Remove(0)).current_item == B
    assert q.apply(with_items(A, B, current=1), Remove(1)).current is None
    cleared = q.apply(q.apply(queue, Repeat("all")), Clear())
    assert cleared.entries == () and cleared.current is None and cleared.repeat == "all"


def test_next_and_previous_under_each_repeat_mode() -> None:
    queue = with_items(A, B, C, current=0)
    steps = [queue := q.apply(queue, Next()) for _ in range(3)]
    assert [s.current for s in steps] == [1, 2, None]  # off: past the end
    assert steps[-1].history == (A, B, C)
    assert q.apply(steps[-1], Next()).current == 0  # before the first: starts again
    wrap = q.apply(with_items(A, B, C, current=2), Repeat("all"))
    assert q.apply(wrap, Next()).current == 0
    assert q.apply(q.apply(wrap, SetCurrent(0)), Previous()).current == 2
    one = q.apply(q.apply(with_items(A, B, current=1), SetCurrent(1, 4000)), Repeat("one"))
    again = q.apply(one, Next())
    assert again.current == 1 and again.position_ms == 0 and again.history == (B,)
    assert q.apply(one, Previous()).current == 0
    assert q.apply(with_items(A, B, current=0), Previous()).current == 0  # off: stays at the first
    assert q.apply(with_items(A, B, current=None), Previous()).current == 1
    assert q.apply(EMPTY, Next()) == EMPTY and q.apply(EMPTY, Previous()) == EMPTY


def test_shuffle_is_seeded_keeps_the_current_first_and_unshuffle_restores() -> None:
    items = tuple(f"{i:016d}" for i in range(20))
    queue = q.apply(q.apply(EMPTY, Replace(items)), SetCurrent(5))
    shuffled = q.apply(queue, Shuffle(42))
    assert shuffled == q.apply(queue, Shuffle(42))
    assert shuffled.entries != items and sorted(shuffled.entries) == sorted(items)
    assert shuffled.current == 0 and shuffled.current_item == items[5] and shuffled.shuffle_seed == 42
    later = q.apply(q.apply(shuffled, Next()), Next())
    restored = q.apply(later, Unshuffle())
    assert restored.entries == items and restored.current_item == later.current_item
    assert restored.shuffle_seed is None and not restored.shuffled


def test_edits_while_shuffled_keep_the_original_order() -> None:
    queue = q.apply(with_items(A, B, C, current=1), Shuffle(7))
    queue = q.apply(queue, InsertNext((D,)))
    assert queue.entries[queue.current + 1] == D  # type: ignore[operator]
    queue = q.apply(queue, Append((E,)))
    assert queue.entries[-1] == E
    queue = q.apply(queue, Remove(queue.entries.index(A)))
    assert q.apply(queue, Unshuffle()).entries == (B, D, C, E)


def test_storage_form_round_trips() -> None:
    queue = q.change(q.apply(with_items(A, B, C), Shuffle(3)), [Next(), Repeat("one")], "car", 99)
    assert q.decode(q.encode(queue)) == queue
    assert q.decode(q.encode(EMPTY)) == EMPTY


IDS = st.sampled_from([A, B, C, D, E])


def ops() -> st.SearchStrategy[q.Op]:
    index = st.integers(0, 12)
    return st.one_of(
        st.builds(Append, st.lists(IDS, max_size=4).map(tuple)),
        st.builds(InsertNext, st.lists(IDS, max_size=4).map(tuple)),
        st.builds(Move, index, index), st.builds(Remove, index), st.builds(SetCurrent, index),
        st.builds(Shuffle, st.integers(0, 2**32)), st.just(Unshuffle()), st.just(Next()),
        st.just(Previous()), st.builds(Repeat, st.sampled_from(q.REPEAT_MODES)), st.just(Clear()),
    )


def apply_valid(queue: Queue, op: q.Op) -> Queue:
    try:
        return q.change(queue, [op], "d", queue.version)
    except QueueError:
        return queue


def check_invariants(queue: Queue) -> None:
    n = len(queue.items)
    assert len(queue.entries) == n <= q.MAX_ENTRIES and len(queue.history) <= q.MAX_HISTORY
    assert queue.current is None or 0 <= queue.current < n
    if queue.order is not None:
        assert sorted(queue.order) == list(range(n)) and n > 0
    else:
        assert queue.shuffle_seed is None


@settings(max_examples=300, deadline=None)
@given(st.lists(ops(), max_size=30))
def test_properties_over_random_changes(sequence: list[q.Op]) -> None:
    queue = EMPTY
    for op in sequence:
        before = queue
        queue = apply_valid(queue, op)
        assert queue.version in (before.version, before.version + 1)  # one per change, none on refusal
        check_invariants(queue)


@settings(max_examples=200, deadline=None)
@given(st.lists(IDS, min_size=1, max_size=30), st.integers(0, 2**32), st.data())
def test_shuffle_then_unshuffle_restores_the_order_and_keeps_the_current(
        items: list[str], seed: int, data: st.DataObject) -> None:
    current = data.draw(st.integers(0, len(items) - 1))
    queue = q.apply(EMPTY, Replace(tuple(items), current))
    shuffled = q.apply(queue, Shuffle(seed))
    assert sorted(shuffled.entries) == sorted(items) and shuffled.current_item == items[current]
    steps = data.draw(st.integers(0, 5))
    for _ in range(steps):
        shuffled = q.apply(shuffled, Next())
    restored = q.apply(shuffled, Unshuffle())
    assert restored.entries == tuple(items)
    assert restored.current_item == shuffled.current_item
    if shuffled.current is not None:  # the same entry (not only the same id) is current
        assert restored.current == shuffled.order[shuffled.current]  # type: ignore[index]
