"""``Coalescer``: at most one event per key per window, the newest.

A player reports its position every few seconds, a replaying device hundreds of times at once; the
other devices need the newest position, not each one. Per key (user, item, device) the first value
goes out at once (the leading edge: a device that starts playing shows at once), later ones within
``window_ms`` of the last sent are held, each replacing the one before, and the held one goes out when
the window ends (the trailing edge: the last position is never lost). An *urgent* value (a pause, a
seek, a stop) goes out at once and drops the held one it supersedes.

Pure: the caller says what time it is and asks, at ``next_due()``, for what is ``due`` (which also
forgets the keys that went quiet, so the table holds only the last window's keys).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Slot(Generic[V]):
    sent_ms: int
    held: V | None = None
    has_held: bool = False


class Coalescer(Generic[K, V]):
    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._slots: dict[K, _Slot[V]] = {}

    def offer(self, key: K, value: V, now_ms: int, urgent: bool = False) -> bool:
        """True: send ``value`` now. False: it is held (``due`` gives it, or a newer value, later)."""
        if self.window_ms <= 0:
            return True
        slot = self._slots.get(key)
        if slot is None or urgent or now_ms - slot.sent_ms >= self.window_ms:
            if slot is None:
                self._slots[key] = _Slot(now_ms)
            else:
                self._drop_held(slot)
                slot.sent_ms = now_ms
            return True
        slot.held, slot.has_held = value, True
        return False

    def due(self, now_ms: int) -> list[V]:
        """The held values whose window has ended, keys in the order first seen; forgets quiet keys."""
        out: list[V] = []
        for key, slot in list(self._slots.items()):
            if now_ms - slot.sent_ms < self.window_ms:
                continue
            if slot.has_held:
                out.append(slot.held)  # type: ignore[arg-type]
                self._drop_held(slot)
                slot.sent_ms = now_ms
            else:
                del self._slots[key]
        return out

    def next_due(self) -> int | None:
        """When ``due`` next has something to do (ms): send a held value or forget a quiet key; None
        when no key is known."""
        if not self._slots:
            return None
        return min(s.sent_ms for s in self._slots.values()) + self.window_ms

    def held(self) -> int:
        return sum(s.has_held for s in self._slots.values())

    @staticmethod
    def _drop_held(slot: _Slot[V]) -> None:
        slot.held, slot.has_held = None, False
