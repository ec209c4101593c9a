"""The progress journal's entries (``revenge.journal``): one ``ProgressUpdate`` a line. Replays are
harmless because the progress rules order by event time: an update applied again changes nothing (the
property test in tests/unit/test_journal_replay.py checks it, play counts and device rows included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from revenge.journal import Codec, JournalFiles
from revenge.progress.model import ProgressUpdate

JOURNAL_DIR = "progress-journal"


def _encode(u: ProgressUpdate) -> list[Any]:
    return [u.user_id, u.item_id, u.item_type, u.duration_ms, u.position_ms, u.event, u.device_id,
            u.event_ts_ms, u.received_ms, u.playback_rate]


def _decode(raw: list[Any]) -> ProgressUpdate:
    user, item, item_type, duration, position, event, device, event_ts, received, rate = raw
    return ProgressUpdate(user, item, item_type, int(duration), int(position), event, device,
                          int(event_ts), int(received), float(rate))


PROGRESS_CODEC: Codec[ProgressUpdate] = Codec(_encode, _decode)


def progress_journal_files(data_dir: Path) -> JournalFiles[ProgressUpdate]:
    return JournalFiles(data_dir / JOURNAL_DIR, PROGRESS_CODEC)
