"""The segment LRU: bounded by bytes, least recently used out first."""

from __future__ import annotations

from revenge.hls.cache import SegmentCache, SegmentKey


def key(i: int, fingerprint: str = "f") -> SegmentKey:
    return SegmentKey("aaaaaaaaaaaaaaaa", fingerprint, "aac-128", i)


def test_lru_stays_within_its_byte_budget_and_evicts_least_recent() -> None:
    cache = SegmentCache(1000)
    for i in range(4):
        cache.put(key(i), bytes(300))
    assert len(cache) == 3 and cache.bytes == 900 and cache.evictions == 1
    assert cache.get(key(0)) is None  # evicted first
    assert cache.get(key(1)) is not None  # now most recent
    cache.put(key(9), bytes(300))
    assert key(2) not in cache and key(1) in cache and key(3) in cache and key(9) in cache
    assert cache.bytes <= 1000
    assert (cache.hits, cache.misses) == (1, 1)


def test_replacing_a_key_counts_bytes_once_and_oversize_values_are_not_kept() -> None:
    cache = SegmentCache(1000)
    cache.put(key(1), bytes(600))
    cache.put(key(1), bytes(100))
    assert cache.bytes == 100 and len(cache) == 1
    cache.put(key(2), bytes(1001))
    assert key(2) not in cache and cache.bytes == 100


def test_a_changed_source_fingerprint_is_a_different_entry() -> None:
    cache = SegmentCache(1000)
    cache.put(key(0, "old"), b"old bytes")
    assert cache.get(key(0, "new")) is None
    assert cache.get(key(0, "old")) == b"old bytes"
