"""The CI guard's verdicts (pure part of benchmarks/guard.py): medians of ratios against limits."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

GUARD = Path(__file__).resolve().parents[2] / "benchmarks" / "guard.py"


@pytest.fixture(scope="module")
def guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_guard", GUARD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_guard"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def segments_result(http_over_encode: float, speedup: float = 1.5, at_0: float = 100.0, at_90: float = 110.0,
                    cached: float = 0.8) -> dict[str, Any]:
    return {
        "cold_segment_ms": {"ratio_http_over_in_process": http_over_encode},
        "vs_ffmpeg_subprocess_ms": {"speedup": speedup},
        "seek_position_ms": {"at_0_p50": at_0, "at_90_p50": at_90},
        "cached_segment": {"throughput_ratio_ours_over_dict": cached},
    }


def test_the_median_of_the_runs_decides(guard: ModuleType) -> None:
    # One noisy run far over the limit does not fail the build; two do.
    rule = next(r for r in guard.RULES if r.name.startswith("cold segment: over HTTP"))
    checks = guard.evaluate([rule], {"segments": [segments_result(r) for r in (1.05, 3.0, 1.1)]})
    assert [(c.values, c.median, c.passed) for c in checks] == [((1.05, 3.0, 1.1), 1.1, True)]
    checks = guard.evaluate([rule], {"segments": [segments_result(r) for r in (1.05, 3.0, 1.6)]})
    assert checks[0].median == 1.6 and not checks[0].passed


def test_every_segment_rule_reads_its_ratio_and_direction(guard: ModuleType) -> None:
    rules = [r for r in guard.RULES if r.benchmark == "segments"]
    good = guard.evaluate(rules, {"segments": [segments_result(1.1)]})
    assert all(c.passed for c in good) and len(good) == len(rules)
    bad = guard.evaluate(rules, {"segments": [segments_result(1.6, speedup=0.5, at_90=250.0, cached=0.1)]})
    assert not any(c.passed for c in bad)
    table = guard.format_checks(bad)
    assert table.count("FAIL") == len(rules) and "≤ 1.5" in table


def test_progress_rules_read_the_progress_benchmark(guard: ModuleType) -> None:
    rules = [r for r in guard.RULES if r.benchmark == "progress"]
    assert rules, "the guard must hold the progress PUT ratio"
    assert guard.evaluate(rules, {}) == []  # a benchmark not run gives no verdict, not a pass


def test_rules_are_well_formed(guard: ModuleType) -> None:
    for rule in guard.RULES:
        assert rule.worse in ("above", "below")
        assert rule.benchmark in guard.BENCHMARKS
