"""Progress rules for a journaled store (``revenge.progress.store_journaled``): the state's memory of the
actions applied to it (``Seen``), and how journaled updates and actions apply, as made and replayed.
Pure functions; lua/common.lua, modify.lua, reset.lua and apply_updates.lua mirror them.

Several instances replay their journals into a restarted server independently, in whatever order they
come to it, and over writes made meanwhile; so what a state ends as must depend on the entries' times
only, not on the order they are applied in:

* **Resets.** A reset leaves its time behind as a tombstone (``Seen.reset_ms``, kept after the reset
  deleted the state). An update received, or an action made, at or before it stays out, made or
  replayed.
  A reset replayed over a state that holds a write newer than it (another instance's, applied first)
  keeps that state but still drops what is older than the reset and can be told apart: the device rows
  received at or before it, a hidden flag set before it; and it leaves its tombstone, so that the
  entries from before it replayed later (by any instance) stay out.
* **Visibility.** The hidden flag is the newest of the hides, shows and ``start`` updates by time
  (``Seen.hidden_ms``: when it last changed): a hide replayed after another instance's newer start does
  not hide the item again, and a start from before a hide does not show it. A hide wins a tie.

What cannot be told apart: a reset replayed after an older update of the same state was folded into it
alongside newer ones (the counts and the heard time of a listen are sums) keeps those in the state.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from revenge.progress.model import CompletionPolicy, ProgressOp, ProgressState, ProgressUpdate
from revenge.progress.rules import apply_update, mark_played, mark_unplayed, set_hidden

MAX_OPS_SEEN = 8


class Seen(NamedTuple):
    ops: tuple[str, ...] = ()  # ids of the last actions applied, in that order
    reset_ms: int = 0  # when the state was last reset (0: never)
    hidden_ms: int = 0  # when its hidden flag last changed (a hide, a show, a start that showed it)


def op_time(op_id: str) -> int:
    return int(op_id.split("-", 1)[0])


def op_seen(seen: Seen, op: ProgressOp) -> bool:
    """Whether a replayed action is in the state already: its id is among the remembered ones, it is
    not newer than the last reset, or it is older than every remembered one when as many are remembered
    as are kept (too old to tell: applied)."""
    if op.op_id in seen.ops or op.now_ms <= seen.reset_ms:
        return True
    return len(seen.ops) >= MAX_OPS_SEEN and op.now_ms < min(op_time(o) for o in seen.ops)


def apply_op(state: ProgressState | None, op: ProgressOp) -> ProgressState | None:
    """An action as it is applied when the user makes it, unremembered (a reset leaves no state)."""
    if op.kind == "played":
        return mark_played(state, op.user_id, op.item_id, op.item_type, op.duration_ms, op.now_ms)
    if op.kind == "unplayed":
        return mark_unplayed(state, op.user_id, op.item_id, op.item_type, op.duration_ms, op.now_ms)
    if op.kind in ("hidden", "shown"):
        return set_hidden(state, op.user_id, op.item_id, op.item_type, op.duration_ms, op.kind == "hidden",
                          op.now_ms)
    return None


def _visible_change_wins(seen: Seen, op: ProgressOp) -> bool:
    return op.now_ms >= seen.hidden_ms if op.kind == "hidden" else op.now_ms > seen.hidden_ms


def _shows(seen: Seen, update: ProgressUpdate) -> bool:
    return update.event == "start" and update.received_ms > seen.hidden_ms


def seen_after(seen: Seen, op: ProgressOp) -> Seen:
    """What the state remembers once ``op`` is applied (made or replayed, a reset that deleted it)."""
    if op.kind == "reset":
        return Seen((), max(seen.reset_ms, op.now_ms))
    ops = (*seen.ops, op.op_id)[-MAX_OPS_SEEN:]
    if op.kind in ("hidden", "shown") and _visible_change_wins(seen, op):
        return Seen(ops, seen.reset_ms, op.now_ms)
    return Seen(ops, seen.reset_ms, seen.hidden_ms)


def made_op(state: ProgressState | None, seen: Seen,
            op: ProgressOp) -> tuple[ProgressState | None, Seen]:
    """An action as the journaled store applies it when it is made: a hide or show older than the last
    change of the flag leaves it (only clocks apart, or a replay under way, make one older)."""
    if op.kind in ("hidden", "shown") and not _visible_change_wins(seen, op):
        return state, seen_after(seen, op)
    return apply_op(state, op), seen_after(seen, op)


def timed_update(state: ProgressState | None, seen: Seen, update: ProgressUpdate,
                 policy: CompletionPolicy) -> tuple[ProgressState | None, Seen]:
    """An update of a journaled store, as made and as replayed: ignored when it was received at or
    before the state's last reset (made: only clocks apart, or a reset of another instance in the same
    moment, put it there); else ``apply_update``, but a ``start`` shows the item only when it is newer
    than the flag's last change (and then records it)."""
    if update.received_ms <= seen.reset_ms:
        return state, seen
    after = apply_update(state, update, policy)
    if _shows(seen, update):  # even one whose event is older than the state's (it leaves the position)
        return dataclasses.replace(after, hidden=False), seen._replace(hidden_ms=update.received_ms)
    if update.event == "start":
        after = dataclasses.replace(after, hidden=state is not None and state.hidden)
    return after, seen


def newest_write(state: ProgressState, seen: Seen) -> int:
    return max(state.updated_ms, state.event_ts_ms, state.last_played_at or 0, seen.hidden_ms,
               *(op_time(o) for o in seen.ops))


def replay_op(state: ProgressState | None, seen: Seen,
              op: ProgressOp) -> tuple[ProgressState | None, Seen]:
    """A journaled action replayed into ``state``: the state and what it remembers after it.

    * an action the state has seen (``op_seen``) changes nothing;
    * a reset deletes the state unless it holds a write newer than the reset (then the reset came
      before that write, on another instance): then it drops the device rows received at or before it
      and a hidden flag set before it, and leaves its tombstone;
    * a mark played/unplayed older than the state's event (an update applied before the replay: by
      this instance between the restart and its check, or by another one) leaves the position to that
      newer event: of a played mark only its completion is counted;
    * otherwise the action applies as when it was made (``made_op``)."""
    if op_seen(seen, op):
        return state, seen
    if op.kind == "reset":
        if state is None or newest_write(state, seen) <= op.now_ms:
            return None, seen_after(seen, op)
        newer_flag = seen.hidden_ms > op.now_ms
        kept = dataclasses.replace(
            state, hidden=state.hidden and newer_flag, version=state.version + 1,
            devices={d: row for d, row in state.devices.items() if row.updated_ms > op.now_ms})
        return kept, Seen(seen.ops, max(seen.reset_ms, op.now_ms), seen.hidden_ms if newer_flag else 0)
    if state is not None and op.now_ms < state.event_ts_ms and op.kind in ("played", "unplayed"):
        count = state.completed_count + (1 if op.kind == "played" else 0)
        after = dataclasses.replace(state, completed_count=count, version=state.version + 1,
                                    updated_ms=max(state.updated_ms, op.now_ms))
        return after, seen_after(seen, op)
    return made_op(state, seen, op)
