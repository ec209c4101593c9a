"""The JSON shape of a progress state (used by the progress routes and the single-item response)."""

from __future__ import annotations

from typing import Any

from revenge.library.model import Item
from revenge.progress import rules
from revenge.progress.model import CompletionPolicy, ProgressState


def _seconds(ms: int) -> float:
    return ms / 1000.0


def progress_json(state: ProgressState | None, item: Item, user_id: str, policy: CompletionPolicy,
                  with_devices: bool = True) -> dict[str, Any]:
    """The caller's progress in ``item``; a never-played item answers the zero state (version 0).

    Times (``*_at``, ``event_ts``) are ms since the Unix epoch; positions are given in seconds (the
    seed's unit) and in ms. Audiobooks with chapters also get the current chapter and the position in it.
    """
    s = state if state is not None else rules.new_state(user_id, item.id, item.type, item.duration_ms)
    body: dict[str, Any] = {
        "item_id": s.item_id,
        "item_type": s.item_type,
        "position_seconds": _seconds(s.position_ms),
        "duration_seconds": _seconds(s.duration_ms),
        "position_ms": s.position_ms,
        "duration_ms": s.duration_ms,
        "percent": s.percent,
        "completed": s.completed,
        "play_count": s.play_count,
        "completed_count": s.completed_count,
        "first_played_at": s.first_played_at,
        "last_played_at": s.last_played_at,
        "completed_at": s.completed_at,
        "playback_rate": s.playback_rate,
        "hidden": s.hidden,
        "version": s.version,
        "device_id": s.device_id or None,
        "event_ts": s.event_ts_ms or None,
        "updated_at": s.updated_ms or None,
        "resume_position_seconds": _seconds(rules.resume_position_ms(state, policy)),
    }
    if with_devices:
        body["devices"] = [
            {"device_id": device_id, "position_seconds": _seconds(d.position_ms),
             "position_ms": d.position_ms, "event_ts": d.event_ts_ms, "updated_at": d.updated_ms}
            for device_id, d in sorted(s.devices.items(), key=lambda kv: (-kv[1].event_ts_ms, kv[0]))
        ]
    if item.type == "audiobook":
        chapter = rules.chapter_at(item.chapters, s.position_ms)
        body["chapter"] = None if chapter is None else {
            "index": chapter.index,
            "title": chapter.title,
            "start_seconds": _seconds(chapter.start_ms),
            "end_seconds": _seconds(chapter.end_ms),
            "position_in_chapter_seconds": _seconds(chapter.position_in_chapter_ms),
        }
    return body
