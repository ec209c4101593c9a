"""Scrobbles: one record per listen, deduplicated per (user, item, started_at), with an outbox state;
and the listening statistics derived from them. Plain dataclasses and pure functions, no I/O.

A listen is identified by when it started: a player that reports the same listen twice (a retry, an
offline replay, or its own end-of-track scrobble after the server already recorded the listen from its
progress updates) gets the stored record back instead of a second one. A repeat that reports more
listened time raises the record's ``listened_ms`` to it (``merge_repeat``), so the stats reflect the
longest report of each listen; nothing else of the first record changes.

Forwarding (``revenge.scrobblers``): a track's record is queued for every service of ``SERVICES``
(episodes and audiobooks are not scrobbled), and leaves each service's outbox with a ``Delivery``:
``sent``, or ``skipped`` with the reason (too old for the service, no artist, refused). The outbox of a
service fills whether or not the user has linked it, so linking later forwards the history too.

Stats count each listen on the UTC day it started (a listen across midnight counts on its first day).
Times are ms since the Unix epoch; durations are ms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from revenge.library.model import ITEM_TYPES, ItemType
from revenge.progress.model import CompletionPolicy, ProgressState, ProgressUpdate

ScrobbleSource = Literal["client", "progress"]
SCROBBLE_SOURCES: tuple[ScrobbleSource, ...] = ("client", "progress")

DAY_MS = 86_400_000
# A client's clock may run a little ahead of ours; a listen that starts further in the future is a bug.
MAX_CLOCK_SKEW_MS = 5 * 60_000
# Before this (2000-01-01T00:00Z) a started_at is almost surely seconds sent where ms were expected.
MIN_STARTED_AT_MS = 946_684_800_000
# One listen may include rewinds and repeated passages, but not more than this many times the item.
MAX_LISTEN_FACTOR = 3
STATS_DEFAULT_DAYS = 30
STATS_MAX_DAYS = 366
OUTBOX_MAX_LIMIT = 1000

SCROBBLE_ID_RE = re.compile(r"[a-z2-7]{16}-[0-9]{1,15}")

ServiceName = Literal["listenbrainz", "lastfm"]
SERVICES: tuple[ServiceName, ...] = ("listenbrainz", "lastfm")
DeliveryState = Literal["sent", "skipped"]
DELIVERY_STATES: tuple[DeliveryState, ...] = ("sent", "skipped")
MAX_REASON_CHARS = 200  # a skip reason is stored with the record: bounded


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a record left one service's outbox: ``sent`` (the service accepted it) or ``skipped`` with
    the reason; ``at`` is the server time (ms) it was marked."""

    service: ServiceName
    state: DeliveryState
    at: int
    reason: str | None = None

    def encode(self) -> str:
        """``state|at|reason`` (the Redis store's field value)."""
        return f"{self.state}|{self.at}|{self.reason or ''}"

    @classmethod
    def decode(cls, service: str, raw: str) -> Delivery:
        state, at, reason = raw.split("|", 2)
        if service not in SERVICES or state not in DELIVERY_STATES:
            raise ValueError(f"bad stored delivery: {service!r} {raw!r}")
        return cls(service, state, int(at), reason or None)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Mark:
    """What the forwarder marks: the record ``scrobble_id`` leaves the outbox as ``state``."""

    scrobble_id: str
    state: DeliveryState
    reason: str | None = None

    def delivery(self, service: ServiceName, now_ms: int) -> Delivery:
        reason = None if self.reason is None else self.reason[:MAX_REASON_CHARS]
        return Delivery(service, self.state, now_ms, reason)


def queued_services(item_type: ItemType) -> tuple[ServiceName, ...]:
    """The outboxes a new record of this type goes into: music only (the services are music logs)."""
    return SERVICES if item_type == "track" else ()


def scrobble_id(item_id: str, started_at: int) -> str:
    """The record's id, derived from its dedup key (unique per user): ``<item_id>-<started_at>``. Ids of
    listens that started at the same time sort by item id, in SQL and in a Redis sorted set alike."""
    return f"{item_id}-{started_at}"


@dataclass(frozen=True, slots=True)
class Scrobble:
    """One listen of one item by one user. ``deliveries`` (ordered by service) say which services'
    outboxes it has left and how; a service without one still has the record queued (tracks only)."""

    user_id: str
    item_id: str
    item_type: ItemType
    started_at: int
    listened_ms: int
    device_id: str
    source: ScrobbleSource
    recorded_at: int
    deliveries: tuple[Delivery, ...] = ()

    @property
    def id(self) -> str:
        return scrobble_id(self.item_id, self.started_at)

    @property
    def day(self) -> int:
        return day_number(self.started_at)

    @property
    def sent_at(self) -> int | None:
        """When a service first accepted the record (``None``: none has yet)."""
        return min((d.at for d in self.deliveries if d.state == "sent"), default=None)


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding a scrobble did: the record as stored now, and whether it was new (``False``: a
    repeat of a listen already recorded)."""

    scrobble: Scrobble
    created: bool


def merge_repeat(existing: Scrobble, repeat: Scrobble) -> Scrobble:
    """The stored record after a repeat of the same listen: the longer ``listened_ms`` wins; who first
    recorded it, when, from which device, and its deliveries stay."""
    if repeat.listened_ms <= existing.listened_ms:
        return existing
    return dataclasses.replace(existing, listened_ms=repeat.listened_ms)


def add_to(existing: Scrobble | None, incoming: Scrobble) -> AddResult:
    """The rule every store applies atomically per (user, item, started_at)."""
    if existing is None:
        return AddResult(incoming, True)
    return AddResult(merge_repeat(existing, incoming), False)


# --- the progress hook --------------------------------------------------------------------------------

def counted_play(update: ProgressUpdate, state: ProgressState, policy: CompletionPolicy) -> bool:
    """Whether ``update`` is the one that made the current listen of a track count as a play.

    The progress rules (listen mode), at the crossing, set ``listen_counted`` and ``completed_at`` to the
    update's event time, which is then also the state's event time. A later update with exactly the same
    event time in the same listen looks alike; it yields the same scrobble (same ``started_at``), which
    the dedup absorbs, so a listen gives exactly one record.
    """
    return (policy.mode == "listen"
            and state.listen_counted
            and state.listen_started_at is not None
            and state.completed_at == update.event_ts_ms
            and state.event_ts_ms == update.event_ts_ms
            and state.user_id == update.user_id
            and state.item_id == update.item_id)


def scrobble_for_play(update: ProgressUpdate, state: ProgressState) -> Scrobble:
    """The record of the listen ``state`` just counted (see ``counted_play``): it started when the
    progress rules say the listen started, so the player's own scrobble of that listen dedups."""
    assert state.listen_started_at is not None
    return Scrobble(
        user_id=state.user_id, item_id=state.item_id, item_type=state.item_type,
        started_at=state.listen_started_at, listened_ms=state.listened_ms, device_id=update.device_id,
        source="progress", recorded_at=update.received_ms,
    )


# --- validation of a client's scrobble ---------------------------------------------------------------

class ScrobbleRejected(ValueError):
    """A scrobble that cannot be a real listen; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_started_at(started_at: int, now_ms: int) -> None:
    if started_at < MIN_STARTED_AT_MS:
        raise ScrobbleRejected("started_at", "started_at must be ms since the Unix epoch (after 2000-01-01); "
                                             "was it sent in seconds?")
    if started_at > now_ms + MAX_CLOCK_SKEW_MS:
        raise ScrobbleRejected("started_at", "started_at is in the future")


def check_listened(listened_ms: int, duration_ms: int) -> None:
    if listened_ms < 0:
        raise ScrobbleRejected("listened_seconds", "listened_seconds must not be negative")
    # The +1 s allows for a player's rounding on very short items.
    if listened_ms > MAX_LISTEN_FACTOR * duration_ms + 1000:
        raise ScrobbleRejected("listened_seconds",
                               f"listened_seconds is more than {MAX_LISTEN_FACTOR}× the item's duration")


# --- listening stats ---------------------------------------------------------------------------------

_EPOCH = dt.date(1970, 1, 1)
ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day_number(ms: int) -> int:
    """The UTC day ``ms`` falls on, as days since 1970-01-01."""
    return ms // DAY_MS


def day_date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=day)


def date_day(date: dt.date) -> int:
    return (date - _EPOCH).days


def parse_date(field: str, raw: str) -> dt.date:
    """``YYYY-MM-DD`` (a real calendar date) or ``ScrobbleRejected`` naming ``field``."""
    if not ISO_DATE_RE.fullmatch(raw):
        raise ScrobbleRejected(field, f"{field} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ScrobbleRejected(field, f"{field} is not a calendar date") from None


def stats_range(raw_from: str | None, raw_to: str | None, today: dt.date) -> tuple[int, int]:
    """The inclusive UTC day range of a stats query: both ends given, or one end and the other
    ``STATS_DEFAULT_DAYS`` away, or the last ``STATS_DEFAULT_DAYS`` days up to ``today``."""
    to_date = parse_date("to", raw_to) if raw_to else None
    from_date = parse_date("from", raw_from) if raw_from else None
    span = dt.timedelta(days=STATS_DEFAULT_DAYS - 1)
    if to_date is None and from_date is None:
        to_date = today
    # A lone end near the calendar's edge: the other end stops at the edge (date.min / date.max).
    if from_date is None:
        assert to_date is not None
        from_date = to_date - span if to_date - dt.date.min >= span else dt.date.min
    if to_date is None:
        to_date = from_date + span if dt.date.max - from_date >= span else dt.date.max
    if to_date < from_date:
        raise ScrobbleRejected("to", "to must not be before from")
    if (to_date - from_date).days + 1 > STATS_MAX_DAYS:
        raise ScrobbleRejected("from", f"at most {STATS_MAX_DAYS} days per query")
    return date_day(from_date), date_day(to_date)


@dataclass(frozen=True, slots=True)
class DayTotal:
    """Listening of one type on one UTC day: the sum of the listens' ``listened_ms`` and their count."""

    day: int
    item_type: ItemType
    listened_ms: int
    listens: int


def day_totals(scrobbles: Iterable[Scrobble], first_day: int, last_day: int) -> list[DayTotal]:
    """The aggregation every store must agree with: listens grouped by start day and type, within
    ``[first_day, last_day]``, ordered by day then type."""
    sums: dict[tuple[int, ItemType], list[int]] = {}
    for s in scrobbles:
        if first_day <= s.day <= last_day:
            entry = sums.setdefault((s.day, s.item_type), [0, 0])
            entry[0] += s.listened_ms
            entry[1] += 1
    return [DayTotal(day, t, ms, n) for (day, t), (ms, n) in sorted(sums.items())]


def _seconds(ms: int) -> float:
    return ms / 1000.0


def stats_json(totals: Sequence[DayTotal], first_day: int, last_day: int) -> dict[str, object]:
    """Every day of the range (zeros included, so a chart needs no gap filling), seconds and listen
    counts per type and in total, and the totals over the range."""
    by_key: Mapping[tuple[int, str], DayTotal] = {(t.day, t.item_type): t for t in totals}
    days = []
    grand_ms = {t: 0 for t in ITEM_TYPES}
    grand_n = {t: 0 for t in ITEM_TYPES}
    for day in range(first_day, last_day + 1):
        entry: dict[str, object] = {"date": day_date(day).isoformat()}
        day_ms = day_n = 0
        for item_type in ITEM_TYPES:
            total = by_key.get((day, item_type))
            ms, n = (total.listened_ms, total.listens) if total is not None else (0, 0)
            entry[item_type] = {"seconds": _seconds(ms), "listens": n}
            day_ms += ms
            day_n += n
            grand_ms[item_type] += ms
            grand_n[item_type] += n
        entry["total"] = {"seconds": _seconds(day_ms), "listens": day_n}
        days.append(entry)
    totals_json: dict[str, object] = {t: {"seconds": _seconds(grand_ms[t]), "listens": grand_n[t]}
                                      for t in ITEM_TYPES}
    totals_json["total"] = {"seconds": _seconds(sum(grand_ms.values())), "listens": sum(grand_n.values())}
    return {"from": day_date(first_day).isoformat(), "to": day_date(last_day).isoformat(),
            "days": days, "totals": totals_json}


def scrobble_json(s: Scrobble) -> dict[str, object]:
    return {
        "id": s.id, "item_id": s.item_id, "item_type": s.item_type, "started_at": s.started_at,
        "listened_seconds": _seconds(s.listened_ms), "device_id": s.device_id, "source": s.source,
        "recorded_at": s.recorded_at, "sent": s.sent_at is not None, "sent_at": s.sent_at,
        "deliveries": {d.service: {"state": d.state, "at": d.at, "reason": d.reason} for d in s.deliveries},
    }
