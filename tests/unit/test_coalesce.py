"""The progress-event coalescer: leading edge, newest at the trailing edge, urgent at once, quiet keys
forgotten."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.playback.coalesce import Coalescer


def test_first_goes_at_once_later_ones_collapse_to_the_newest_at_the_window_end() -> None:
    c: Coalescer[str, int] = Coalescer(1000)
    assert c.offer("a", 1, 0)
    assert not c.offer("a", 2, 100)
    assert not c.offer("a", 3, 900)
    assert c.held() == 1
    assert c.next_due() == 1000
    assert c.due(999) == []
    assert c.due(1000) == [3]
    assert c.held() == 0
    # The window restarts at the trailing send: the next value inside it is held again.
    assert not c.offer("a", 4, 1500)
    assert c.due(2000) == [4]


def test_keys_are_independent() -> None:
    c: Coalescer[str, int] = Coalescer(1000)
    assert c.offer("a", 1, 0)
    assert c.offer("b", 1, 10)
    assert not c.offer("a", 2, 20)
    assert c.due(1005) == [2]
    assert c.offer("b", 2, 1010)


def test_an_urgent_value_goes_at_once_and_drops_what_it_supersedes() -> None:
    c: Coalescer[str, str] = Coalescer(1000)
    assert c.offer("a", "progress 1", 0)
    assert not c.offer("a", "progress 2", 100)
    assert c.offer("a", "pause", 200, urgent=True)
    assert c.held() == 0
    assert c.due(5000) == []


def test_after_a_quiet_window_a_value_goes_at_once_and_quiet_keys_are_forgotten() -> None:
    c: Coalescer[str, int] = Coalescer(1000)
    assert c.offer("a", 1, 0)
    assert c.next_due() == 1000
    assert c.due(1000) == []
    assert c.next_due() is None  # forgotten: nothing to wake up for
    assert c.offer("a", 2, 1200)


def test_window_zero_sends_everything_and_keeps_nothing() -> None:
    c: Coalescer[str, int] = Coalescer(0)
    assert all(c.offer("a", n, n) for n in range(5))
    assert c.next_due() is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 400), st.booleans()), max_size=60),
       st.integers(0, 2**32))
def test_every_keys_newest_value_is_sent_and_sends_respect_the_window(
        steps: list[tuple[str, int, bool]], seed: int) -> None:
    window = 1000
    c: Coalescer[str, tuple[str, int]] = Coalescer(window)
    rng = random.Random(seed)
    now = 0
    sent: dict[str, list[tuple[int, tuple[str, int], bool]]] = {}
    last: dict[str, tuple[str, int]] = {}
    for n, (key, gap, urgent) in enumerate(steps):
        now += gap
        if rng.random() < 0.3:
            due_at = c.next_due()
            if due_at is not None and due_at <= now:
                for value in c.due(now):
                    sent.setdefault(value[0], []).append((now, value, False))
        value = (key, n)
        last[key] = value
        if c.offer(key, value, now, urgent):
            sent.setdefault(key, []).append((now, value, urgent))
    while (due_at := c.next_due()) is not None:
        now = max(now, due_at)
        for value in c.due(now):
            sent.setdefault(value[0], []).append((now, value, False))
    for key, newest in last.items():
        assert sent[key][-1][1] == newest  # the newest always goes out
        times = [t for t, _, urgent in sent[key] if not urgent]
        values = [v[1] for _, v, _ in sent[key]]
        assert values == sorted(values)  # never an older value after a newer one
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= window  # non-urgent sends keep the window
