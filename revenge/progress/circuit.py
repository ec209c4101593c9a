"""The store's circuit, as a plain state machine (no I/O, no clock of its own: the caller passes ``now``).

Closed: requests go to the store. The first store failure (an error, or no answer in time) opens it: the
store is known down, so requests fail at once instead of each waiting for its own timeout, and queued
ones are not sent. While open, a probe runs every ``probe_interval`` seconds (the caller runs it: see
``revenge.progress.guard``); the first probe that succeeds closes it. Only probes close it: an operation
that was already in flight when the store went down and succeeds late says nothing about the next one.

``failed`` and ``probe_succeeded`` report the two transitions, so that each outage is logged once when
it starts and once when it ends, not once per request.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Circuit:
    probe_interval: float
    is_open: bool = False
    cause: str = ""  # why the store is down: the last failure's message
    opened_at: float = 0.0
    next_probe_at: float = 0.0

    def __post_init__(self) -> None:
        if self.probe_interval <= 0:
            raise ValueError("probe_interval must be positive")

    def failed(self, now: float, cause: str) -> bool:
        """A store operation failed. ``True`` when this opened the circuit (the outage starts now)."""
        if self.is_open:
            return False
        self.is_open, self.cause, self.opened_at = True, cause, now
        self.next_probe_at = now + self.probe_interval
        return True

    def probe_wait(self, now: float) -> float:
        """Seconds until the next probe is due (0: now); only meaningful while open."""
        return max(0.0, self.next_probe_at - now)

    def probe_failed(self, now: float, cause: str) -> None:
        """A probe found the store still down (``cause`` may differ from the first failure's)."""
        if self.is_open:
            self.cause = cause
            self.next_probe_at = now + self.probe_interval

    def probe_succeeded(self, now: float) -> float | None:
        """A probe found the store back: closes the circuit. How long it was open, or ``None`` when it
        was not open (no transition)."""
        if not self.is_open:
            return None
        self.is_open, self.cause = False, ""
        return now - self.opened_at
