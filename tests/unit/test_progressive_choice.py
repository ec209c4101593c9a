from __future__ import annotations

from pathlib import Path

import pytest

from revenge.errors import Overloaded
from revenge.hls.engine import HlsEngine
from revenge.hls.progressive import choose_format
from tests.live import test_settings


def test_format_and_bit_rate_for_format_and_max_bit_rate() -> None:
    assert choose_format(None, 0) == (choose_format("mp3", 0)[0], 192)  # type: ignore[index]
    assert choose_format("opus", 0)[1] == 128  # type: ignore[index]
    assert choose_format("MP3", 100)[1] == 96  # type: ignore[index]  # the largest step under the cap
    assert choose_format("aac", 10)[1] == 32  # type: ignore[index]  # never below the smallest step
    assert choose_format("mp3", 320)[1] == 192  # type: ignore[index]  # a cap is not a request for more
    assert choose_format("wma", 0) is None


async def test_run_encode_refuses_past_the_on_demand_queue(tmp_path: Path) -> None:
    engine = HlsEngine(test_settings(tmp_path, encode_queue_max=1, encode_workers=1))
    try:
        assert await engine.run_encode(lambda: 41 + 1) == 42
        engine._chunks = 1  # one chunk waiting already: the queue is full
        with pytest.raises(Overloaded):
            await engine.run_encode(lambda: 0)
    finally:
        engine._chunks = 0
        await engine.aclose()


def test_a_stream_is_heard_up_to_what_was_sent_and_no_faster_than_time() -> None:
    from revenge.subsonic.transcoded import heard_ms

    assert heard_ms(10_000, 300_000, 2_000) == 12_000  # sent far ahead: the wall clock bounds it
    assert heard_ms(0, 4_000, 60_000) == 4_000  # a slow stream: only what was sent
    assert heard_ms(5_000, 1_000, -5) == 5_000
