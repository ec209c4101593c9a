"""A simulated player's play clock and stall accounting (pure: wall times are passed in).

Playback (re)starts once the segments that arrived after a start or a seek cover ``start_buffer``
media seconds from the start position (or reach the end of the item), as ExoPlayer's
``bufferForPlaybackMs`` (2.5 s) does: a player that started on a sliver of audio left in the segment
it seeked into would stall at once. From then the playhead moves at ``speed`` media seconds per wall
second. Segments are fetched in order, so the playhead can
only run dry at the start of the next segment still missing: that segment's *deadline* is the wall
time the playhead reaches its start. A segment that arrives after its deadline is a stall; the player
waits for it (rebuffering), so every later deadline moves by the time lost.

The wait before playback (re)starts is not a stall: it is reported apart, as startup and seek
latency, the way players and QoE tools count them.
"""

from __future__ import annotations

from dataclasses import dataclass

from revenge.loadtest.playlist import SegmentRef


@dataclass(slots=True)
class PlayClock:
    speed: float  # media seconds per wall second (1.0 = real time)
    origin: float  # media position where this run of playback starts (after a start or a seek)
    start_buffer: float = 0.0  # media seconds buffered from ``origin`` before playback starts
    end: float = float("inf")  # end of the item: playback starts when the buffer reaches it
    started_at: float | None = None  # wall time playback started; None while starting
    stalled_seconds: float = 0.0  # wall time lost rebuffering since ``started_at``
    stalls: int = 0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be positive")

    @property
    def playing(self) -> bool:
        return self.started_at is not None

    def due(self, media_seconds: float) -> float:
        """Wall time the playhead reaches ``media_seconds`` if nothing stalls from now on."""
        if self.started_at is None:
            raise RuntimeError("playback has not started")
        return self.started_at + self.stalled_seconds + max(0.0, media_seconds - self.origin) / self.speed

    def arrived(self, segment: SegmentRef, now: float) -> float:
        """Account for ``segment`` (the next in order) arriving at ``now``: starts playback once
        enough is buffered, else returns how long the player stalled waiting for it (0.0 in time)."""
        if self.started_at is None:
            if segment.end - self.origin >= self.start_buffer or segment.end >= self.end:
                self.started_at = now
            return 0.0
        late = now - self.due(segment.start)
        if late <= 0.0:
            return 0.0
        self.stalled_seconds += late
        self.stalls += 1
        return late

    def position(self, now: float, buffered_end: float) -> float:
        """The playhead at ``now``: it never runs past what is buffered."""
        if self.started_at is None:
            return self.origin
        moved = (now - self.started_at - self.stalled_seconds) * self.speed
        return min(buffered_end, self.origin + max(0.0, moved))

    def fetch_at(self, segments: tuple[SegmentRef, ...], index: int, first: int, buffer: int) -> float | None:
        """When a player keeping ``buffer`` segments ahead of the one playing may request segment
        ``index`` (``first`` being where this run of playback began): as soon as the playhead enters
        segment ``index - buffer``. ``None``: right away."""
        gate = index - buffer
        if gate <= first or self.started_at is None:
            return None
        return self.due(segments[gate].start)
