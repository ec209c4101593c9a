"""Byte-bounded LRU of encoded segments.

Keyed by (item id, source fingerprint, profile, segment index): a changed file has a new
fingerprint, so it can never be answered with segments of its old content. Used only from the
event loop thread (the engine hands results over from the encode threads), so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple


class SegmentKey(NamedTuple):
    item_id: str
    fingerprint: str
    profile: str
    index: int


class SegmentCache:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("the cache needs a positive byte budget")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[SegmentKey, bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: SegmentKey) -> bool:
        return key in self._entries

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: SegmentKey) -> bytes | None:
        data = self._entries.get(key)
        if data is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return data

    def put(self, key: SegmentKey, data: bytes) -> None:
        """Insert as most recent, evicting least recently used entries to stay within budget.
        A single value larger than the whole budget is not kept."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        if len(data) > self.max_bytes:
            return
        self._entries[key] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
            self.evictions += 1
