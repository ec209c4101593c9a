"""Album sessions: a heartbeat's position on the album timeline as progress updates of its tracks. Pure.

The position maps to (track, offset) (:func:`revenge.library.album_stream.locate`). While it stays in
one track, the heartbeat is that track's update. When it moves on to the next track by playing (no
``seek``, no ``start``), the previous track's listen ends at its end (a ``stop`` there, heard time
counted by the usual rules against the wall clock, so it counts as a play once if it was heard) and the
new track's listen starts at 0 when the join was passed (``now - offset / rate``) and runs to the
offset. A ``seek`` or ``start`` into another track (or a move backwards) leaves the previous track
where it was and starts a listen of the new one at the offset. Tracks skipped over in one heartbeat
(shorter than the heartbeat interval) get nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from revenge.library.album_stream import TrackSpan, locate
from revenge.library.model import Item
from revenge.progress import rules as progress_rules
from revenge.progress.model import ProgressEvent, ProgressUpdate


@dataclass(frozen=True, slots=True)
class AlbumBeat:
    track: Item  # the track playing at the position
    offset_ms: int  # within it
    updates: tuple[ProgressUpdate, ...]  # to apply in order (the last is the playing track's)


def album_beat(track_spans: Sequence[TrackSpan], tracks: Mapping[str, Item], previous_ms: int,
               position_ms: int, event: ProgressEvent, user_id: str, device_id: str, received_ms: int,
               playback_rate: float = 1.0) -> AlbumBeat:
    """The progress updates of a heartbeat at ``position_ms`` on the album timeline, the session's
    previous position being ``previous_ms``."""
    before_id, _ = locate(track_spans, previous_ms)
    track_id, offset = locate(track_spans, position_ms)
    track = tracks[track_id]

    def update(item: Item, at_ms: int, ev: ProgressEvent, ts_ms: int) -> ProgressUpdate:
        return progress_rules.make_update(user_id, item.id, item.type, item.duration_ms, at_ms, ev,
                                          device_id, ts_ms, received_ms, playback_rate)

    if track_id == before_id:
        return AlbumBeat(track, offset, (update(track, offset, event, received_ms),))
    order = [s.item_id for s in track_spans]
    played_on = event not in ("seek", "start") and order.index(track_id) > order.index(before_id)
    if not played_on:
        return AlbumBeat(track, offset, (update(track, offset, "start", received_ms),))
    before = tracks[before_id]
    joined_ms = max(0, received_ms - math.floor(offset / playback_rate))
    return AlbumBeat(track, offset, (
        update(before, before.duration_ms, "stop", joined_ms),
        update(track, 0, "start", joined_ms),
        update(track, offset, event, received_ms),
    ))
