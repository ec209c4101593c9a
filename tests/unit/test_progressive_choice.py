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


def test_a_body_never_passes_its_announced_length() -> None:
    from revenge.subsonic.transcoded import fitted

    assert fitted(b"abcdef", 0, None) == b"abcdef"
    assert fitted(b"abcdef", 10, 14) == b"abcd"
    assert fitted(b"abcdef", 14, 14) == b""


def test_the_length_bound_covers_the_packets_with_room_for_the_pages() -> None:
    from revenge.hls.progressive import FORMATS, length_bound

    opus, aac = FORMATS["opus"], FORMATS["aac"]
    # 10 s of Opus at 128 kb/s: 500 packets of 320 bytes, 2 lacing bytes each, ~10 pages.
    bound = length_bound(opus, 128, 480_000, 48_000)
    assert 500 * 322 + 10 * 27 + 100 < bound < 500 * 322 * 1.03 + 2048
    # AAC at 128 kb/s, 44.1 kHz: 371.5 bytes a frame, 25 % allowed, plus ADTS' 7.
    assert length_bound(aac, 128, 441_000, 44_100) == 1024 + 434 * (7 + 465)
    assert length_bound(aac, 64, 0, 44_100) < length_bound(aac, 64, 1024, 44_100)
