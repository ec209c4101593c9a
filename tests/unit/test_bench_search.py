"""The limit search of the listener benchmark: few trials, the right bracket, honest reporting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.loadtest.search import search_limit


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=1, max_value=100),
       st.integers(min_value=100, max_value=5000))
def test_finds_the_threshold_within_the_resolution(limit: int, start: int, maximum: int) -> None:
    result = search_limit(lambda n: n <= limit, start, maximum, resolution=0.1)
    if start > limit:
        assert result.largest_pass is None and result.smallest_fail == start
        assert result.trials == [(start, False)]
    elif limit >= maximum:
        assert result.largest_pass == maximum and result.smallest_fail is None
    else:
        assert result.largest_pass is not None and result.smallest_fail is not None
        assert result.largest_pass <= limit < result.smallest_fail
        assert result.smallest_fail - result.largest_pass <= max(1, int(result.largest_pass * 0.1))
    assert len(result.trials) == len({n for n, _ in result.trials})  # never the same trial twice
    assert len(result.trials) <= 30


def test_trial_sequence_for_a_known_limit() -> None:
    seen: list[int] = []

    def passes(n: int) -> bool:
        seen.append(n)
        return n <= 130

    result = search_limit(passes, 25, 400, resolution=0.1)
    assert seen[:4] == [25, 50, 100, 200]  # doubling, then bisection between 100 and 200
    assert result.largest_pass is not None and 118 <= result.largest_pass <= 130
    assert result.trials == [(n, n <= 130) for n in seen]


def test_a_noisy_failure_bounds_the_search_and_the_trials_show_it() -> None:
    # 100 fails by bad luck although up to 120 would pass: the search brackets below 100.
    result = search_limit(lambda n: n != 100 and n <= 120, 50, 400, resolution=0.1)
    assert result.trials[:2] == [(50, True), (100, False)]
    assert result.smallest_fail == 100
    assert result.largest_pass is not None and 90 <= result.largest_pass < 100


@pytest.mark.parametrize("start, maximum, resolution, growth", [(0, 10, 0.1, 2.0), (11, 10, 0.1, 2.0),
                                                                (1, 10, 0.0, 2.0), (1, 10, 0.1, 1.0)])
def test_bad_arguments(start: int, maximum: int, resolution: float, growth: float) -> None:
    with pytest.raises(ValueError):
        search_limit(lambda n: True, start, maximum, resolution, growth)
