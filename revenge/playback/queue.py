"""The play queue of a user, shared by the user's devices: a plain value and pure operations on it.

* ``items`` are catalog item ids in their original order (an id may appear more than once). While
  shuffled, ``order`` is the play order as indices into ``items``; ``unshuffle`` drops it, so the
  original order comes back, with the entry that was current still current. Every index an operation
  takes or a client sees is an index into the play order (``entries``).
* ``current`` is ``None`` before the first entry: a new queue, or one played to its end with repeat off;
  ``next`` then starts at the first entry and ``insert_next`` puts entries there.
* ``next`` with repeat "one" replays the current entry (it is what a player calls when an entry ends;
  ``set_current`` jumps); with "all" it wraps to the first, with "off" it goes past the end. ``previous``
  moves back (wrapping to the last with "all") whatever the repeat mode.
* ``history``: the item ids of the last ``MAX_HISTORY`` entries left by ``next`` or ``set_current``,
  newest last.
* ``change`` applies a list of operations as ONE change: all or nothing (the first invalid one raises
  ``QueueError`` naming its field), the version one more than before, ``changed_at``/``changed_by``
  set. Stores write it only if the version they hold is still the one it was based on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

MAX_ENTRIES = 10_000
MAX_HISTORY = 50
RepeatMode = Literal["off", "all", "one"]
REPEAT_MODES: tuple[RepeatMode, ...] = ("off", "all", "one")


class QueueError(ValueError):
    """An operation that cannot apply (an index out of range, …); ``field`` names it: ``ops[2].index``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class QueueTooLarge(QueueError):
    """The change would make the queue longer than ``MAX_ENTRIES``."""


@dataclass(frozen=True, slots=True)
class Queue:
    items: tuple[str, ...] = ()
    order: tuple[int, ...] | None = None  # the shuffled play order: indices into ``items``
    current: int | None = None  # index into the play order
    position_ms: int = 0
    repeat: RepeatMode = "off"
    shuffle_seed: int | None = None
    history: tuple[str, ...] = ()
    version: int = 0  # 0: never written
    changed_at: int = 0  # ms since the Unix epoch
    changed_by: str = ""  # the device id of the last change

    @property
    def entries(self) -> tuple[str, ...]:
        """The item ids in play order."""
        if self.order is None:
            return self.items
        return tuple(self.items[i] for i in self.order)

    @property
    def shuffled(self) -> bool:
        return self.order is not None

    @property
    def current_item(self) -> str | None:
        if self.current is None:
            return None
        return self.items[self.order[self.current] if self.order is not None else self.current]


# --- operations -------------------------------------------------------------------------------------
# ``field`` is where the operation came from ("ops[2]", or "" for a whole-body one): errors name
# ``field + ".index"`` and the like.


@dataclass(frozen=True, slots=True)
class Append:
    items: tuple[str, ...]
    field: str = ""


@dataclass(frozen=True, slots=True)
class InsertNext:
    items: tuple[str, ...]
    field: str = ""


@dataclass(frozen=True, slots=True)
class Move:
    from_index: int
    to_index: int
    field: str = ""


@dataclass(frozen=True, slots=True)
class Remove:
    index: int
    field: str = ""


@dataclass(frozen=True, slots=True)
class Clear:
    field: str = ""


@dataclass(frozen=True, slots=True)
class SetCurrent:
    index: int
    position_ms: int = 0
    field: str = ""


@dataclass(frozen=True, slots=True)
class Shuffle:
    seed: int
    field: str = ""


@dataclass(frozen=True, slots=True)
class Unshuffle:
    field: str = ""


@dataclass(frozen=True, slots=True)
class Repeat:
    mode: RepeatMode
    field: str = ""


@dataclass(frozen=True, slots=True)
class Replace:
    """``PUT``: new items (unshuffled), the current index (``None``: the first, if any) and position."""

    items: tuple[str, ...]
    current: int | None = None
    position_ms: int = 0
    field: str = ""


@dataclass(frozen=True, slots=True)
class Next:
    field: str = ""


@dataclass(frozen=True, slots=True)
class Previous:
    field: str = ""


Op = (Append | InsertNext | Move | Remove | Clear | SetCurrent | Shuffle | Unshuffle | Repeat | Replace
      | Next | Previous)


def _name(op_field: str, name: str) -> str:
    return f"{op_field}.{name}" if op_field else name


def _check_index(index: int, length: int, op_field: str, name: str) -> None:
    if not 0 <= index < length:
        raise QueueError(_name(op_field, name), f"{name} must be 0..{length - 1}" if length
                         else f"{name}: the queue is empty")


def _check_size(length: int, op_field: str) -> None:
    if length > MAX_ENTRIES:
        raise QueueTooLarge(_name(op_field, "items"), f"a queue holds at most {MAX_ENTRIES} entries")


def _played(queue: Queue) -> tuple[str, ...]:
    """The history with the current entry added (it was played, or at least started)."""
    item = queue.current_item
    if item is None:
        return queue.history
    return (*queue.history, item)[-MAX_HISTORY:]


def _moved_index(current: int, src: int, dst: int) -> int:
    if current == src:
        return dst
    if src < current <= dst:
        return current - 1
    if dst <= current < src:
        return current + 1
    return current


def apply(queue: Queue, op: Op) -> Queue:
    """``queue`` after ``op`` (version and change fields untouched: see ``change``)."""
    n = len(queue.items)
    match op:
        case Append(items=new):
            _check_size(n + len(new), op.field)
            order = None if queue.order is None else (*queue.order, *range(n, n + len(new)))
            return replace(queue, items=queue.items + new, order=order)
        case InsertNext(items=new):
            _check_size(n + len(new), op.field)
            at = 0 if queue.current is None else queue.current + 1  # in play order
            if queue.order is None:
                return replace(queue, items=queue.items[:at] + new + queue.items[at:])
            # In the original order the entries go after the current entry too.
            base = 0 if queue.current is None else queue.order[queue.current] + 1
            shifted = [i + len(new) if i >= base else i for i in queue.order]
            order = (*shifted[:at], *range(base, base + len(new)), *shifted[at:])
            return replace(queue, items=queue.items[:base] + new + queue.items[base:], order=order)
        case Move(from_index=src, to_index=dst):
            _check_index(src, n, op.field, "from")
            _check_index(dst, n, op.field, "to")
            play = list(queue.order if queue.order is not None else queue.items)
            play.insert(dst, play.pop(src))
            current = None if queue.current is None else _moved_index(queue.current, src, dst)
            if queue.order is None:
                return replace(queue, items=tuple(play), current=current)  # type: ignore[arg-type]
            return replace(queue, order=tuple(play), current=current)  # type: ignore[arg-type]
        case Remove(index=index):
            _check_index(index, n, op.field, "index")
            if queue.order is None:
                items = queue.items[:index] + queue.items[index + 1:]
                order = None
            else:
                gone = queue.order[index]
                items = queue.items[:gone] + queue.items[gone + 1:]
                order = tuple(i - 1 if i > gone else i for i in queue.order if i != gone) or None
            current, position = queue.current, queue.position_ms
            if current is not None:
                if index < current:
                    current -= 1
                elif index == current:  # the next entry becomes current, from its start
                    position = 0
                    current = current if current < len(items) else None
            return replace(queue, items=items, order=order, current=current, position_ms=position,
                           shuffle_seed=queue.shuffle_seed if order is not None else None)
        case Clear():
            return replace(queue, items=(), order=None, current=None, position_ms=0, shuffle_seed=None)
        case SetCurrent(index=index, position_ms=position):
            _check_index(index, n, op.field, "index")
            history = queue.history if index == queue.current else _played(queue)
            return replace(queue, current=index, position_ms=position, history=history)
        case Shuffle(seed=seed):
            if n == 0:
                return replace(queue, order=None, shuffle_seed=None)
            first = None if queue.current is None else (
                queue.order[queue.current] if queue.order is not None else queue.current)
            rest = [i for i in range(n) if i != first]
            random.Random(seed).shuffle(rest)
            order = tuple(rest) if first is None else (first, *rest)
            return replace(queue, order=order, current=None if first is None else 0, shuffle_seed=seed)
        case Unshuffle():
            if queue.order is None:
                return queue
            current = None if queue.current is None else queue.order[queue.current]
            return replace(queue, order=None, current=current, shuffle_seed=None)
        case Repeat(mode=mode):
            return replace(queue, repeat=mode)
        case Replace(items=new, current=current, position_ms=position):
            _check_size(len(new), op.field)
            if current is not None:
                _check_index(current, len(new), op.field, "current_index")
            elif new:
                current = 0
            return replace(queue, items=new, order=None, current=current, position_ms=position,
                           shuffle_seed=None)
        case Next():
            if n == 0:
                return queue
            history = _played(queue)
            if queue.repeat == "one" and queue.current is not None:
                return replace(queue, position_ms=0, history=history)
            following = 0 if queue.current is None else queue.current + 1
            if following >= n:
                following = 0 if queue.repeat == "all" else None  # type: ignore[assignment]
            return replace(queue, current=following, position_ms=0, history=history)
        case Previous():
            if n == 0:
                return queue
            if queue.current is None:
                before = n - 1
            elif queue.current == 0:
                before = n - 1 if queue.repeat == "all" else 0
            else:
                before = queue.current - 1
            return replace(queue, current=before, position_ms=0)
    raise AssertionError(f"unknown queue operation {op!r}")


def change(queue: Queue, ops: Sequence[Op], changed_by: str, now_ms: int) -> Queue:
    """``ops`` applied in order as one change (all or nothing): the next version of ``queue``."""
    result = queue
    for op in ops:
        result = apply(result, op)
    return replace(result, version=queue.version + 1, changed_at=now_ms, changed_by=changed_by)


# --- storage form -----------------------------------------------------------------------------------


def encode(queue: Queue) -> bytes:
    """The JSON both stores hold."""
    return orjson.dumps({
        "items": queue.items, "order": queue.order, "current": queue.current,
        "position_ms": queue.position_ms, "repeat": queue.repeat, "shuffle_seed": queue.shuffle_seed,
        "history": queue.history, "version": queue.version, "changed_at": queue.changed_at,
        "changed_by": queue.changed_by,
    })


def decode(data: bytes | str) -> Queue:
    raw: dict[str, Any] = orjson.loads(data)
    order = raw["order"]
    repeat = raw["repeat"]
    if repeat not in REPEAT_MODES:
        raise ValueError(f"bad stored repeat mode {repeat!r}")
    return Queue(items=tuple(raw["items"]), order=None if order is None else tuple(order),
                 current=raw["current"], position_ms=int(raw["position_ms"]), repeat=repeat,
                 shuffle_seed=raw["shuffle_seed"], history=tuple(raw["history"]),
                 version=int(raw["version"]), changed_at=int(raw["changed_at"]),
                 changed_by=str(raw["changed_by"]))


EMPTY = Queue()
