"""Progress rules: ordering, completion, play counting, resume, continue-listening. Pure functions.

The Dragonfly store mirrors ``apply_update`` and the mark/hide functions in Lua, so they stay plain
integer arithmetic on the flat fields of ``ProgressState`` (plus one ``floor`` for the playback rate).

Ordering. Updates are applied in *event time* order, not arrival order: the event time is the client's
timestamp clamped to the server's receive time. An update whose event time is older than the last
applied one still updates its device's row (if newer for that device) but never moves the global
position; an update at least as new as the last applied one (ties: the later arrival wins) becomes the
global state — including a ``seek`` backwards, so a deliberate rewind is never undone by "furthest
position wins".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from revenge.library.model import Chapter, ItemType
from revenge.progress.model import (
    MAX_DEVICES_PER_ITEM,
    CompletionPolicy,
    DevicePosition,
    ProgressEvent,
    ProgressState,
    ProgressUpdate,
)

# A listen of a track starts again when the position jumps back to within this much of the start,
# from at least this much further on (so a tiny rewind in the first seconds is not a new listen).
LISTEN_RESTART_WINDOW_MS = 5_000
# Heard time between two updates is bounded by the wall-clock time between them (x playback rate) plus
# this slack for the jitter between a player's clock reading and its position reading; the rest of a
# forward jump was skipped, not heard.
HEARD_SLACK_MS = 1_000
# Events after which a completed position-mode item that is out of its completion zone counts as being
# listened to again (pause/stop at 0 after the end, which some players send, do not un-complete it).
REPLAY_EVENTS = frozenset({"start", "seek", "progress"})
CONTINUE_MIN_POSITION_MS = 30_000
MAX_PLAYBACK_RATE = 16.0  # accepted playback rates: (0, 16], the browsers' ceiling
PLAYBACK_RATE_MESSAGE = f"playback_rate must be in (0, {MAX_PLAYBACK_RATE:g}]"
CONTINUE_MAX_AGE_MS = 90 * 86_400_000


def clamp_event_time(client_ts_ms: int | None, received_ms: int) -> int:
    """The event time of an update: the client's timestamp, but never later than when it arrived."""
    if client_ts_ms is None:
        return received_ms
    return min(client_ts_ms, received_ms)


def clamp_position(position_ms: int, duration_ms: int) -> int:
    return max(0, min(position_ms, duration_ms))


def make_update(user_id: str, item_id: str, item_type: ItemType, duration_ms: int, position_ms: int,
                event: ProgressEvent, device_id: str, client_ts_ms: int | None, received_ms: int,
                playback_rate: float = 1.0) -> ProgressUpdate:
    """An update as the rules expect it: ``duration_ms`` the catalog's, the position clamped into the
    item, the event time clamped to the receive time. (For the routes and for session heartbeats.)"""
    return ProgressUpdate(
        user_id=user_id, item_id=item_id, item_type=item_type, duration_ms=duration_ms,
        position_ms=clamp_position(position_ms, duration_ms), event=event, device_id=device_id,
        event_ts_ms=clamp_event_time(client_ts_ms, received_ms), received_ms=received_ms,
        playback_rate=playback_rate,
    )


def new_state(user_id: str, item_id: str, item_type: ItemType, duration_ms: int) -> ProgressState:
    return ProgressState(user_id=user_id, item_id=item_id, item_type=item_type, duration_ms=duration_ms)


def in_completion_zone(position_ms: int, duration_ms: int, policy: CompletionPolicy) -> bool:
    """Position-mode completion: ≥ ``complete_percent`` or ≤ ``complete_remaining_ms`` left (and past 0,
    so an item shorter than the remaining-time threshold is not completed by merely opening it)."""
    if policy.mode != "position" or duration_ms <= 0 or position_ms <= 0:
        return False
    if policy.complete_remaining_ms is not None and duration_ms - position_ms <= policy.complete_remaining_ms:
        return True
    return policy.complete_percent is not None and position_ms * 100 >= policy.complete_percent * duration_ms


def counts_as_play(listened_ms: int, duration_ms: int, policy: CompletionPolicy) -> bool:
    """Listen-mode play: heard ≥ ``play_percent`` of the item or ≥ ``play_heard_ms``; never for items
    shorter than ``play_min_duration_ms``."""
    if duration_ms < policy.play_min_duration_ms:
        return False
    return listened_ms * 100 >= policy.play_percent * duration_ms or listened_ms >= policy.play_heard_ms


def heard_between(prev_position_ms: int, prev_event_ts_ms: int, position_ms: int, event_ts_ms: int,
                  playback_rate: float) -> int:
    """How much of the advance from the previous global position was plausibly heard."""
    advance = position_ms - prev_position_ms
    if advance <= 0:
        return 0
    elapsed = max(0, event_ts_ms - prev_event_ts_ms)
    return min(advance, math.floor(elapsed * playback_rate) + HEARD_SLACK_MS)


def jumped_to_start(prev_position_ms: int, position_ms: int) -> bool:
    return (position_ms <= LISTEN_RESTART_WINDOW_MS
            and prev_position_ms - position_ms >= LISTEN_RESTART_WINDOW_MS)


def _with_device(devices: dict[str, DevicePosition], update: ProgressUpdate) -> dict[str, DevicePosition]:
    """The device rows after ``update``: its device's row moves only to a newer (or equal) event time;
    past ``MAX_DEVICES_PER_ITEM`` rows the one with the oldest event (then smallest id) is dropped."""
    row = devices.get(update.device_id)
    if row is None or update.event_ts_ms >= row.event_ts_ms:
        devices[update.device_id] = DevicePosition(update.position_ms, update.event_ts_ms, update.received_ms)
    if len(devices) > MAX_DEVICES_PER_ITEM:
        oldest = min(devices, key=lambda d: (devices[d].event_ts_ms, d))
        del devices[oldest]
    return devices


def apply_update(state: ProgressState | None, update: ProgressUpdate,
                 policy: CompletionPolicy) -> ProgressState:
    """The state after ``update``. ``state`` is ``None`` when the user has none for the item yet.

    Always: the device row (event-time ordered), ``first_played_at``/``last_played_at`` (min/max event
    time), ``version`` + 1, ``updated_ms``, the authoritative ``duration_ms``/``item_type``.
    Only when the update is the newest (event time ≥ the last applied one): the global position, device,
    event time and rate; a ``start`` un-hides the item; then completion by the policy's mode:

    * position mode (episode, audiobook): entering the completion zone sets ``completed``,
      ``completed_at`` and counts one completion and one play; leaving it with a start/seek/progress
      event (listening again) clears ``completed``.
    * listen mode (track): a listen starts at a ``start`` event, at the first update, or when the position
      jumps back to the start; heard time accumulates (``heard_between``, nothing for a ``seek``) and the
      first time it ``counts_as_play`` in this listen, ``play_count``/``completed_count`` + 1 and
      ``completed`` (= this listen has counted); a new listen clears ``completed``.
    """
    s = state if state is not None else new_state(update.user_id, update.item_id, update.item_type,
                                                  update.duration_ms)
    ts = update.event_ts_ms
    first_played_at = ts if s.first_played_at is None else min(s.first_played_at, ts)
    last_played_at = ts if s.last_played_at is None else max(s.last_played_at, ts)
    devices = _with_device(dict(s.devices), update)
    if state is not None and ts < s.event_ts_ms:
        return dataclasses.replace(s, item_type=update.item_type, duration_ms=update.duration_ms,
                                   version=s.version + 1, updated_ms=max(s.updated_ms, update.received_ms),
                                   first_played_at=first_played_at, last_played_at=last_played_at,
                                   devices=devices)

    position = update.position_ms
    completed = s.completed
    completed_at = s.completed_at
    completed_count = s.completed_count
    play_count = s.play_count
    listen_started_at = s.listen_started_at
    listened_ms = s.listened_ms
    listen_counted = s.listen_counted

    if policy.mode == "position":
        zone = in_completion_zone(position, update.duration_ms, policy)
        if zone and not completed:
            completed, completed_at = True, ts
            completed_count += 1
            play_count += 1
        elif not zone and completed and update.event in REPLAY_EVENTS:
            completed = False
    else:
        if (listen_started_at is None or update.event == "start"
                or jumped_to_start(s.position_ms, position)):
            listen_started_at, listened_ms, listen_counted, completed = ts, 0, False, False
        elif update.event != "seek":
            listened_ms += heard_between(s.position_ms, s.event_ts_ms, position, ts, update.playback_rate)
        if not listen_counted and counts_as_play(listened_ms, update.duration_ms, policy):
            listen_counted, completed, completed_at = True, True, ts
            play_count += 1
            completed_count += 1

    # Built field by field rather than with dataclasses.replace: this runs once per update written.
    return ProgressState(
        user_id=s.user_id,
        item_id=s.item_id,
        item_type=update.item_type,
        duration_ms=update.duration_ms,
        position_ms=position,
        completed=completed,
        play_count=play_count,
        completed_count=completed_count,
        first_played_at=first_played_at,
        last_played_at=last_played_at,
        completed_at=completed_at,
        playback_rate=update.playback_rate,
        hidden=False if update.event == "start" else s.hidden,
        version=s.version + 1,
        device_id=update.device_id,
        event_ts_ms=ts,
        updated_ms=max(s.updated_ms, update.received_ms),  # never back: a replayed older entry
        listen_started_at=listen_started_at,
        listened_ms=listened_ms,
        listen_counted=listen_counted,
        devices=devices,
    )


def apply_updates(state: ProgressState | None, updates: Iterable[ProgressUpdate],
                  policy: CompletionPolicy) -> ProgressState | None:
    """``apply_update`` folded over ``updates`` (all for the same user and item), in the given order."""
    for update in updates:
        state = apply_update(state, update, policy)
    return state


def mark_played(state: ProgressState | None, user_id: str, item_id: str, item_type: ItemType,
                duration_ms: int, now_ms: int) -> ProgressState:
    """Position = duration, completed, ``completed_count`` + 1. It is an event at ``now_ms``: an offline
    update from before the mark (replayed later) does not undo it."""
    s = state if state is not None else new_state(user_id, item_id, item_type, duration_ms)
    return dataclasses.replace(
        s, item_type=item_type, duration_ms=duration_ms, position_ms=duration_ms, completed=True,
        completed_at=now_ms, completed_count=s.completed_count + 1, event_ts_ms=max(s.event_ts_ms, now_ms),
        version=s.version + 1, updated_ms=max(s.updated_ms, now_ms),
    )


def mark_unplayed(state: ProgressState | None, user_id: str, item_id: str, item_type: ItemType,
                  duration_ms: int, now_ms: int) -> ProgressState:
    """Position 0, not completed, the current listen forgotten; counters are history and stay."""
    s = state if state is not None else new_state(user_id, item_id, item_type, duration_ms)
    return dataclasses.replace(
        s, item_type=item_type, duration_ms=duration_ms, position_ms=0, completed=False, completed_at=None,
        listen_started_at=None, listened_ms=0, listen_counted=False, event_ts_ms=max(s.event_ts_ms, now_ms),
        version=s.version + 1, updated_ms=max(s.updated_ms, now_ms),
    )


def set_hidden(state: ProgressState | None, user_id: str, item_id: str, item_type: ItemType,
               duration_ms: int, hidden: bool, now_ms: int) -> ProgressState:
    """Hide from / show again in continue-listening (a later ``start`` event also shows it again)."""
    s = state if state is not None else new_state(user_id, item_id, item_type, duration_ms)
    return dataclasses.replace(s, hidden=hidden, version=s.version + 1, updated_ms=max(s.updated_ms, now_ms))


def resume_position_ms(state: ProgressState | None, policy: CompletionPolicy) -> int:
    """Where a new session starts: the global position, or 0 when there is none, the item is completed,
    the position is in the last ``resume_tail_percent``, or the item is too short to resume."""
    if state is None or state.completed or state.duration_ms < policy.resume_min_duration_ms:
        return 0
    if state.position_ms * 100 >= (100 - policy.resume_tail_percent) * state.duration_ms:
        return 0
    return state.position_ms


def is_continue_candidate(state: ProgressState, now_ms: int) -> bool:
    """Started (≥ 30 s in), not completed, not hidden, played within the last 90 days."""
    return (state.position_ms >= CONTINUE_MIN_POSITION_MS
            and not state.completed
            and not state.hidden
            and state.last_played_at is not None
            and state.last_played_at >= now_ms - CONTINUE_MAX_AGE_MS)


def continue_order_key(state: ProgressState) -> tuple[int, str]:
    return (-(state.last_played_at or 0), state.item_id)


def select_continue(states: Iterable[ProgressState], item_type: ItemType | None, limit: int,
                    now_ms: int) -> list[ProgressState]:
    """Continue-listening candidates of ``item_type`` (any if ``None``), newest first, at most ``limit``."""
    chosen = [s for s in states
              if (item_type is None or s.item_type == item_type) and is_continue_candidate(s, now_ms)]
    chosen.sort(key=continue_order_key)
    return chosen[:limit]


@dataclass(frozen=True, slots=True)
class ChapterPosition:
    """The chapter an absolute position falls in, and the position within that chapter."""

    index: int
    title: str
    start_ms: int
    end_ms: int
    position_in_chapter_ms: int


def chapter_at(chapters: Sequence[Chapter], position_ms: int) -> ChapterPosition | None:
    """The chapter containing ``position_ms`` (start inclusive, end exclusive; the very end of the book
    belongs to the last chapter; a gap before the first chapter belongs to it). ``None`` without chapters."""
    if not chapters:
        return None
    ordered = sorted(chapters, key=lambda c: c.start_ms)
    current = ordered[0]
    for chapter in ordered:
        if chapter.start_ms <= position_ms:
            current = chapter
        else:
            break
    offset = max(0, min(position_ms, current.end_ms) - current.start_ms)
    return ChapterPosition(current.index, current.title, current.start_ms, current.end_ms, offset)


def is_valid_playback_rate(rate: float) -> bool:
    return 0 < rate <= MAX_PLAYBACK_RATE
