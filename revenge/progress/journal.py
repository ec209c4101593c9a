"""The progress journal's entries (``revenge.journal``): one ``ProgressUpdate`` or ``ProgressOp`` (mark
played/unplayed, hide/show, reset) a line, in the order they were made. Replays are harmless: the
progress rules order updates by event time, so an update applied again changes nothing, and a state
remembers the actions applied to it (``replay.Seen``), so an action is applied once (the property tests
in tests/unit/test_journal_replay.py check it, play counts and device rows included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from revenge.journal import Codec, JournalFiles
from revenge.progress.model import ProgressOp, ProgressUpdate

JOURNAL_DIR = "progress-journal"
OP = "op"  # an action's line: ["op", kind, user, item, item_type, duration, now, id]; an update's has 10

OP_KINDS = frozenset(("played", "unplayed", "hidden", "shown", "reset"))

ProgressEntry = ProgressUpdate | ProgressOp


def _encode(e: ProgressEntry) -> list[Any]:
    if isinstance(e, ProgressOp):
        return [OP, e.kind, e.user_id, e.item_id, e.item_type, e.duration_ms, e.now_ms, e.op_id]
    return [e.user_id, e.item_id, e.item_type, e.duration_ms, e.position_ms, e.event, e.device_id,
            e.event_ts_ms, e.received_ms, e.playback_rate]


def _decode(raw: list[Any]) -> ProgressEntry:
    if len(raw) == 8 and raw[0] == OP:
        _, kind, user, item, item_type, duration, now, op_id = raw
        if kind not in OP_KINDS:
            raise ValueError(f"not a progress action: {kind!r}")
        return ProgressOp(kind, user, item, item_type, int(duration), int(now), str(op_id))
    user, item, item_type, duration, position, event, device, event_ts, received, rate = raw
    return ProgressUpdate(user, item, item_type, int(duration), int(position), event, device,
                          int(event_ts), int(received), float(rate))


PROGRESS_CODEC: Codec[ProgressEntry] = Codec(_encode, _decode)


def progress_journal_files(data_dir: Path) -> JournalFiles[ProgressEntry]:
    return JournalFiles(data_dir / JOURNAL_DIR, PROGRESS_CODEC)
