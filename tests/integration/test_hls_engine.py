"""The engine in-process, with real encodes: single flight, priorities, prefetch, admission,
cancellation, failures. The encode function is wrapped (counted, gated), never replaced."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from revenge.hls.decode import SourceError
from revenge.hls.engine import EngineBusy, HlsEngine
from revenge.hls.profiles import PROFILES
from revenge.hls.rendition import Rendition
from revenge.hls.transcode import encode_segment
from revenge.library.model import Item
from tests.hls_support import native_threads, probed_item
from tests.live import test_settings
from tests.mediagen import write_audio
from tests.waits import until

AAC = PROFILES["aac-64"]


class Gate:
    """Wraps the real encode: records which segments start, and holds each one until released."""

    def __init__(self, closed: bool = True, fail: Callable[[int], bool] | None = None) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self._permits = threading.Semaphore(0)
        self._open = not closed
        self._fail = fail
        self._lock = threading.Lock()

    def __call__(self, rendition: Rendition, index: int) -> dict[int, bytes]:
        with self._lock:
            self.started.append(index)
        if not self._open and not self._permits.acquire(timeout=60):
            raise RuntimeError("test gate never released")
        if self._fail is not None and self._fail(index):
            raise SourceError("simulated decode failure")
        data = encode_segment(rendition, index)
        with self._lock:
            self.finished.append(index)
        return {index: data}

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._permits.release()

    def open(self) -> None:
        self._open = True
        self._permits.release(1000)


@pytest.fixture(scope="module")
def item(tmp_path_factory: pytest.TempPathFactory) -> Item:
    path = tmp_path_factory.mktemp("engine") / "tone.flac"
    write_audio(path, seconds=30.0, rate=44100, channels=1, kind="music")
    return probed_item([path])


def make_engine(tmp_path: Path, gate: Gate, **overrides: Any) -> HlsEngine:
    values: dict[str, Any] = {"encode_workers": 1, "encode_queue_max": 4, "prefetch_segments": 0,
                              "segment_seconds": 1.0}
    values.update(overrides)
    return HlsEngine(test_settings(tmp_path, **values), encode=gate)


@pytest.fixture
async def closing() -> AsyncIterator[list[HlsEngine]]:
    engines: list[HlsEngine] = []
    yield engines
    for engine in engines:
        await engine.aclose()


async def test_twenty_concurrent_requests_for_a_cold_segment_cause_one_encode(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    gate = Gate(closed=False)
    engine = make_engine(tmp_path, gate, encode_workers=2)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    results = await asyncio.gather(*(engine.segment(rendition, 7) for _ in range(20)))
    assert gate.started == [7]
    assert len(set(results)) == 1
    assert await engine.segment(rendition, 7) == results[0]  # now from the cache
    assert gate.started == [7] and engine.stats.encodes == 1


async def test_full_queue_refuses_then_recovers(tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    gate = Gate()
    engine = make_engine(tmp_path, gate, encode_queue_max=2)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    waiting = [asyncio.ensure_future(engine.segment(rendition, i)) for i in range(3)]
    await until(lambda: gate.started == [0] and engine.queued == (2, 0), "one running, two queued")
    with pytest.raises(EngineBusy):
        await engine.segment(rendition, 3)
    # A request for a segment that is already queued joins it instead of being refused.
    joined = asyncio.ensure_future(engine.segment(rendition, 2))
    await asyncio.sleep(0.01)
    assert not joined.done()
    assert engine.stats.rejected == 1
    gate.open()
    assert len(await asyncio.gather(*waiting, joined)) == 4
    assert await engine.segment(rendition, 3)  # recovered
    assert sorted(gate.started) == [0, 1, 2, 3] and engine.queued == (0, 0)


async def test_prefetch_runs_after_on_demand_work(tmp_path: Path, item: Item,
                                                  closing: list[HlsEngine]) -> None:
    gate = Gate()
    engine = make_engine(tmp_path, gate, prefetch_segments=2, encode_queue_max=8)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    first = asyncio.ensure_future(engine.segment(rendition, 0))
    await until(lambda: gate.started == [0], "segment 0 running")
    gate.release()
    await first
    # Serving 0 queued prefetches of 1 and 2; 1 is running (held), 2 waits.
    await until(lambda: gate.started == [0, 1] and engine.queued == (0, 1), "prefetch 1 running, 2 queued")
    wanted = asyncio.ensure_future(engine.segment(rendition, 20))
    await until(lambda: engine.queued == (1, 1), "on-demand 20 queued next to prefetch 2")
    gate.open()
    await wanted
    await until(lambda: {21, 22} <= set(gate.finished), "prefetch after segment 20")
    assert gate.started[:4] == [0, 1, 20, 2]  # the on-demand request jumped the prefetch queue
    assert engine.stats.prefetch_encodes == 4
    # Prefetched segments are served from the cache: no new encode.
    before = engine.stats.encodes
    await engine.segment(rendition, 2, prefetch=False)
    assert engine.stats.encodes == before


async def test_prefetch_is_dropped_first_when_on_demand_work_arrives(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    gate = Gate()
    engine = make_engine(tmp_path, gate, prefetch_segments=2, encode_queue_max=2)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    first = asyncio.ensure_future(engine.segment(rendition, 0))
    await until(lambda: gate.started == [0], "segment 0 running")
    gate.release()
    await first
    await until(lambda: engine.queued == (0, 1), "prefetch 2 queued behind running prefetch 1")
    demand = [asyncio.ensure_future(engine.segment(rendition, i)) for i in (10, 11)]
    await until(lambda: engine.queued == (2, 0), "two on-demand queued, prefetch dropped")
    assert engine.stats.prefetch_dropped == 1
    with pytest.raises(EngineBusy):
        await engine.segment(rendition, 12)
    gate.open()
    await asyncio.gather(*demand)
    assert 2 not in gate.started[:4]


async def test_a_queued_encode_nobody_waits_for_is_abandoned(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    gate = Gate()
    engine = make_engine(tmp_path, gate)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    running = asyncio.ensure_future(engine.segment(rendition, 0))
    await until(lambda: gate.started == [0], "segment 0 running")
    queued = [asyncio.ensure_future(engine.segment(rendition, 5)) for _ in range(3)]
    await until(lambda: engine.queued == (1, 0), "segment 5 queued")
    for task in queued:  # every client of segment 5 goes away
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    assert engine.queued == (0, 0) and engine.stats.abandoned == 1
    # The client of the running encode goes away too: the encode finishes and is cached.
    running.cancel()
    gate.open()
    await until(lambda: gate.finished == [0], "segment 0 finished")
    await until(lambda: engine.running == 0, "pool idle")
    assert engine.stats.encodes == 1
    await engine.segment(rendition, 0)
    assert gate.started == [0]  # served from the cache, segment 5 never encoded


async def test_a_failed_encode_fails_its_waiters_and_is_retried_later(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    failing = {3}
    gate = Gate(closed=False, fail=lambda i: i in failing)
    engine = make_engine(tmp_path, gate, encode_workers=2)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    outcomes = await asyncio.gather(*(engine.segment(rendition, 3) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(o, SourceError) for o in outcomes) and gate.started == [3]
    assert engine.stats.encode_errors == 1
    failing.clear()
    assert await engine.segment(rendition, 3)  # not poisoned: encoded again
    assert gate.started == [3, 3]


async def test_a_changed_fingerprint_never_serves_old_segments(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    gate = Gate(closed=False)
    engine = make_engine(tmp_path, gate)
    closing.append(engine)
    old = await engine.rendition(item, AAC)
    await engine.segment(old, 1)
    changed = dataclasses.replace(item, fingerprint="0" * 24)
    new = await engine.rendition(changed, AAC)
    assert new is not old
    await engine.segment(new, 1)
    assert gate.started == [1, 1]


async def test_renditions_are_prepared_once_under_concurrency(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    calls: list[str] = []
    from revenge.hls.rendition import prepare_rendition

    def counting(*args: Any) -> Rendition:
        calls.append(args[1].name)
        return prepare_rendition(*args)

    engine = HlsEngine(test_settings(tmp_path), prepare=counting)
    closing.append(engine)
    entries = await asyncio.gather(*(engine.rendition(item, AAC) for _ in range(10)))
    assert calls == ["aac-64"] and all(e is entries[0] for e in entries)


async def test_close_drops_queued_work_and_refuses_new_work(tmp_path: Path, item: Item) -> None:
    gate = Gate()
    engine = make_engine(tmp_path, gate)
    rendition = await engine.rendition(item, AAC)
    running = asyncio.ensure_future(engine.segment(rendition, 0))
    queued = asyncio.ensure_future(engine.segment(rendition, 1))
    await until(lambda: engine.queued == (1, 0), "segment 1 queued")
    closing = asyncio.ensure_future(engine.aclose())
    await until(lambda: engine.queued == (0, 0), "the queued segment dropped")  # before 0 can finish
    gate.open()
    await closing
    assert await running  # the running encode finished
    with pytest.raises(asyncio.CancelledError):
        await queued
    with pytest.raises(EngineBusy):
        await engine.segment(rendition, 2)
    assert gate.started == [0]


async def test_cancel_prefetch_drops_the_items_queued_prefetches_only(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    other_path = tmp_path / "other.flac"
    write_audio(other_path, seconds=10.0, rate=44100, channels=1, kind="music")
    other = probed_item([other_path])
    gate = Gate()
    engine = make_engine(tmp_path, gate, prefetch_segments=3, encode_queue_max=8)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    other_rendition = await engine.rendition(other, AAC)
    first = asyncio.ensure_future(engine.segment(rendition, 0))
    await until(lambda: gate.started == [0], "segment 0 running")
    gate.release()
    await first
    await until(lambda: gate.started == [0, 1] and engine.queued == (0, 2), "prefetch 1 running, 2-3 queued")
    engine._schedule_prefetch(other_rendition, 0)  # another listener's prefetch, on another item
    await until(lambda: engine.queued == (0, 5), "the other item's prefetches queued too")
    assert engine.cancel_prefetch(item.id) == 2
    assert engine.queued == (0, 3) and engine.stats.prefetch_dropped == 2
    assert engine.cancel_prefetch(item.id) == 0
    gate.open()
    await until(lambda: len(gate.finished) == 5, "the running one and the other item's three")
    assert gate.started == [0, 1, 1, 2, 3]  # the item's 0 and 1, then the other item's 1..3
    assert engine.stats.prefetch_encodes == 4
    assert engine.key(rendition, 2) not in engine.cache and engine.key(rendition, 3) not in engine.cache
    assert engine.key(other_rendition, 3) in engine.cache


async def test_jobs_of_one_encoder_run_never_run_at_once(tmp_path: Path, item: Item,
                                                          closing: list[HlsEngine]) -> None:
    """Two workers, segments 0 and 1 (one run of 4) and 4 (the next run): 0 and 4 start together, 1
    waits for 0's run to be free, though a worker is idle."""
    gate = Gate()
    engine = make_engine(tmp_path, gate, encode_workers=2, encoder_run_segments=4)
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    requests = [asyncio.ensure_future(engine.segment(rendition, i)) for i in (0, 1, 4)]
    await until(lambda: len(gate.started) == 2, "two encodes started")
    await asyncio.sleep(0.05)
    assert sorted(gate.started) == [0, 4]
    gate.open()
    await asyncio.gather(*requests)
    assert sorted(gate.started) == [0, 1, 4]


async def test_a_listener_continues_the_run_and_a_mid_run_start_caches_the_run_before_it(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    """The engine's own encode (no wrapper): segment 1 continues the run segment 0 left suspended,
    and a cold request for segment 6 (run 4..7) encodes 4 and 5 on the way, which are then cached."""
    engine = HlsEngine(test_settings(tmp_path, encode_workers=1, prefetch_segments=0, segment_seconds=1.0,
                                     encoder_run_segments=4))
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    first, second = await engine.segment(rendition, 0), await engine.segment(rendition, 1)
    assert (engine.runs.started, engine.runs.continued) == (1, 1)
    assert (first, second) == (encode_segment(rendition, 0), encode_segment(rendition, 1))
    assert await engine.segment(rendition, 6) == encode_segment(rendition, 6)
    assert engine.stats.encodes == 3 and engine.runs.started == 2
    assert engine.peek(rendition, 4) == encode_segment(rendition, 4)
    assert engine.peek(rendition, 5) is not None and engine.stats.encodes == 3
    assert await engine.segment(rendition, 7) == encode_segment(rendition, 7)
    assert engine.runs.continued == 2 and len(engine.runs) == 1  # 7 ended run 4..7; 0..3 waits at 2
    await engine.aclose()
    assert len(engine.runs) == 0  # closing the engine closes the suspended encoders


async def test_idle_suspended_runs_are_closed_without_another_encode(
        tmp_path: Path, item: Item, closing: list[HlsEngine]) -> None:
    """A server gone quiet closes the encoders its listeners left suspended (and their native
    threads) after ``encoder_idle_seconds``."""
    engine = HlsEngine(test_settings(tmp_path, encode_workers=1, prefetch_segments=0, segment_seconds=1.0,
                                     encoder_run_segments=4, encoder_idle_seconds=1.0))
    closing.append(engine)
    rendition = await engine.rendition(item, AAC)
    await engine.segment(rendition, 20)  # the encode thread and FFmpeg's lasting threads exist now
    await until(lambda: len(engine.runs) == 0, "the warm-up run expired")
    for index in (0, 4, 8):  # three runs, each suspended after its first segment
        await engine.segment(rendition, index)
    suspended, holding, encodes = len(engine.runs), native_threads(), engine.stats.encodes
    assert suspended >= 1  # at least the last one (a slow machine may have expired the others)
    await until(lambda: len(engine.runs) == 0, "the idle runs closed")
    assert holding - native_threads() >= suspended  # their encoders' threads are gone
    assert engine.stats.encodes == encodes and engine.runs.started == 4  # no encode did it
