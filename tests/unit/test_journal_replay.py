"""The journal's replay is safe: the progress rules order by event time, so applying again updates that
were already applied changes nothing (property tests over random histories and replays), and the
journal's pure decisions (when to replay, when and how far to trim) and its files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.journal import ServerMark, decide, entry_line, parse_line, snapshot_point_ms
from revenge.progress import replay, rules
from revenge.progress.journal import PROGRESS_CODEC, progress_journal_files
from revenge.progress.model import (
    DEFAULT_POLICIES,
    MAX_DEVICES_PER_ITEM,
    ProgressOp,
    ProgressState,
    ProgressUpdate,
)

T0 = 1_700_000_000_000
EVENTS = ("start", "progress", "pause", "seek", "stop")


@st.composite
def histories(draw: st.DrawFn) -> list[ProgressUpdate]:
    """Updates of one user and item, each with its own event time, arriving in any order (clients that
    were offline replay late), from up to more devices than a state keeps rows of."""
    item_type = draw(st.sampled_from(("track", "episode", "audiobook")))
    duration = draw(st.integers(1_000, 3_600_000))
    count = draw(st.integers(1, 40))
    times = draw(st.lists(st.integers(0, 7_200_000), min_size=count, max_size=count, unique=True))
    devices = draw(st.integers(1, MAX_DEVICES_PER_ITEM + 4))
    updates = []
    for ts in times:
        updates.append(ProgressUpdate(
            user_id="u1", item_id="i1", item_type=item_type, duration_ms=duration,
            position_ms=draw(st.integers(0, duration)), event=draw(st.sampled_from(EVENTS)),
            device_id=f"d{draw(st.integers(0, devices - 1))}", event_ts_ms=T0 + ts,
            received_ms=T0 + ts + draw(st.integers(0, 60_000)),
            playback_rate=draw(st.sampled_from((1.0, 1.5, 2.0, 0.75)))))
    return updates


def fold(state: ProgressState | None, updates: list[ProgressUpdate]) -> ProgressState | None:
    for u in updates:
        state = rules.apply_update(state, u, DEFAULT_POLICIES[u.item_type])
    return state


def content(state: ProgressState | None) -> ProgressState | None:
    """The state but for what every write bumps (the version counter, the server time of the write)."""
    return None if state is None else dataclasses.replace(state, version=0, updated_ms=0)


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_replaying_applied_updates_changes_nothing(history: list[ProgressUpdate],
                                                   data: st.DataObject) -> None:
    state = fold(None, history)
    assert state is not None
    replay = data.draw(st.lists(st.sampled_from(history), max_size=60))  # any of them, repeated, any order
    replayed = fold(state, replay)
    assert content(replayed) == content(state)
    assert replayed is not None and replayed.play_count == state.play_count
    assert replayed.devices == state.devices


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_a_snapshot_plus_the_journal_gives_the_state_before_the_crash(history: list[ProgressUpdate],
                                                                      data: st.DataObject) -> None:
    """The server restarts from a snapshot holding the first ``saved`` updates; the journal holds every
    update since some earlier point (trimmed behind an older snapshot) and is replayed in order: the
    state is the one the server had before it crashed."""
    saved = data.draw(st.integers(0, len(history)))
    journal_from = data.draw(st.integers(0, saved))
    restored = fold(fold(None, history[:saved]), history[journal_from:])
    assert content(restored) == content(fold(None, history))


@settings(max_examples=100, deadline=None)
@given(histories(), st.data())
def test_replays_twice_over_are_no_more_than_once(history: list[ProgressUpdate], data: st.DataObject) -> None:
    """Two restarts in a row: the journal replayed twice (the second before any snapshot trimmed it)."""
    saved = data.draw(st.integers(0, len(history)))
    once = fold(fold(None, history[:saved]), history)
    twice = fold(once, history)
    assert content(twice) == content(once) == content(fold(None, history))


# --- with the user's actions (mark played/unplayed, hide/show, reset) ---------------------------------

Entry = ProgressUpdate | ProgressOp
OP_KINDS = ("played", "unplayed", "hidden", "shown", "reset")


@st.composite
def journals(draw: st.DrawFn) -> list[Entry]:
    """One instance's journal of one user and item: updates (event times behind their receipt: offline
    clients) and actions, in the order the server took them (its clock only goes forward)."""
    item_type = draw(st.sampled_from(("track", "episode", "audiobook")))
    duration = draw(st.integers(1_000, 3_600_000))
    clock = T0
    entries: list[Entry] = []
    for n in range(draw(st.integers(1, 40))):
        clock += draw(st.integers(1, 600_000))
        if draw(st.integers(0, 3)) == 0:
            kind = draw(st.sampled_from(OP_KINDS))
            entries.append(ProgressOp(kind, "u1", "i1", item_type, duration, clock, f"{clock}-{n}"))
            continue
        entries.append(ProgressUpdate(
            user_id="u1", item_id="i1", item_type=item_type, duration_ms=duration,
            position_ms=draw(st.integers(0, duration)), event=draw(st.sampled_from(EVENTS)),
            device_id=f"d{draw(st.integers(0, 3))}", event_ts_ms=clock - draw(st.integers(0, 900_000)),
            received_ms=clock, playback_rate=draw(st.sampled_from((1.0, 1.5, 2.0)))))
    return entries


State = tuple[ProgressState | None, replay.Seen]
NOTHING: State = (None, replay.Seen())


def made(state: State, entries: list[Entry]) -> State:
    """The entries as the journaled store applies them when they are made."""
    current, seen = state
    for e in entries:
        if isinstance(e, ProgressUpdate):
            current, seen = replay.timed_update(current, seen, e, DEFAULT_POLICIES[e.item_type])
        else:
            current, seen = replay.made_op(current, seen, e)
    return current, seen


def replayed(state: State, entries: list[Entry]) -> State:
    current, seen = state
    for e in entries:
        if isinstance(e, ProgressUpdate):
            current, seen = replay.timed_update(current, seen, e, DEFAULT_POLICIES[e.item_type])
        else:
            current, seen = replay.replay_op(current, seen, e)
    return current, seen


@settings(max_examples=300, deadline=None)
@given(journals(), st.data())
def test_a_snapshot_plus_any_journal_tails_replayed_gives_the_state_before_the_crash(
        journal: list[Entry], data: st.DataObject) -> None:
    """The server restarts from a snapshot holding the first ``saved`` entries; the journal from some
    earlier point is replayed, then (restarts again, from that snapshot or a later one) any tails of
    the journal, any number of times, in any order: the state is the one before the crash, play counts
    (a mark played counts once) and device rows included."""
    truth, _ = made(NOTHING, journal)
    saved = data.draw(st.integers(0, len(journal)))
    state = made(NOTHING, journal[:saved])
    state = replayed(state, journal[data.draw(st.integers(0, saved)):])
    assert content(state[0]) == content(truth)
    for start in data.draw(st.lists(st.integers(0, len(journal)), max_size=6)):
        state = replayed(state, journal[start:])
        assert content(state[0]) == content(truth), start
    if truth is not None and state[0] is not None:
        assert state[0].completed_count == truth.completed_count and state[0].devices == truth.devices


def test_a_replayed_mark_played_counts_once() -> None:
    """Without the ids a state remembers, the replayed mark would count a second completion."""
    mark = ProgressOp("played", "u1", "i1", "episode", 600_000, T0, f"{T0}-a")
    state = made(NOTHING, [mark])
    again = replayed(state, [mark, mark])
    assert again[0] is not None and again[0].completed_count == 1


def test_what_a_replayed_action_leaves_to_newer_writes() -> None:
    def op(kind: str, at: int) -> ProgressOp:
        return ProgressOp(kind, "u1", "i1", "episode", 600_000, at, f"{at}-x")  # type: ignore[arg-type]

    def progress(at: int, event: str = "progress") -> ProgressUpdate:
        return ProgressUpdate("u1", "i1", "episode", 600_000, 60_000, event, "phone", at, at)  # type: ignore[arg-type]

    # A mark older than the state's event (written meanwhile, by another instance) counts, and leaves
    # the position to the newer event.
    state = made(NOTHING, [progress(T0 + 10)])
    after, _ = replayed(state, [op("played", T0 + 5)])
    assert after is not None and after.completed_count == 1 and after.position_ms == 60_000
    # A reset replayed over a write made after it (by another instance) keeps the state; over an older
    # one it deletes it, and the entries from before it stay out on the next replay.
    assert content(replayed(state, [op("reset", T0 + 5)])[0]) == content(state[0])
    gone = replayed(state, [op("reset", T0 + 20)])
    assert gone[0] is None and replayed(gone, [progress(T0 + 10), op("played", T0 + 11)])[0] is None
    # A start from before a hide does not show the item again when replayed.
    hidden = made(NOTHING, [progress(T0 + 1, "start"), op("hidden", T0 + 2)])
    assert replayed(hidden, [progress(T0 + 1, "start")])[0].hidden  # type: ignore[union-attr]


# --- two instances replaying into one server, in either order -----------------------------------------

@st.composite
def shared_histories(draw: st.DrawFn) -> tuple[list[Entry], list[int]]:
    """The entries of two instances (``journals``' entries, each given to instance 0 or 1) of one user
    and item, in the order the server took them, and which instance made each."""
    entries = draw(journals())
    return entries, draw(st.lists(st.integers(0, 1), min_size=len(entries), max_size=len(entries)))


def last_reset(entries: list[Entry]) -> int:
    return max((e.now_ms for e in entries if isinstance(e, ProgressOp) and e.kind == "reset"), default=0)


@settings(max_examples=400, deadline=None)
@given(shared_histories(), st.data())
def test_two_instances_replaying_in_either_order_agree_on_resets_and_hides(
        history: tuple[list[Entry], list[int]], data: st.DataObject) -> None:
    """The server restarts from a snapshot of the first ``saved`` entries; each instance replays its
    journal's tail (each trimmed at its own point behind the snapshot), A first or B first: the item
    exists, and is hidden, exactly as it was before the crash either way, and no device row from before
    the last reset comes back."""
    entries, owner = history
    truth, _ = made(NOTHING, entries)
    saved = data.draw(st.integers(0, len(entries)))
    cuts = (data.draw(st.integers(0, saved)), data.draw(st.integers(0, saved)))
    tails = [[e for n, e in enumerate(entries) if owner[n] == i and n >= cuts[i]] for i in (0, 1)]
    snapshot = made(NOTHING, entries[:saved])
    ab = replayed(replayed(snapshot, tails[0]), tails[1])[0]
    ba = replayed(replayed(snapshot, tails[1]), tails[0])[0]
    reset = last_reset(entries)
    for state in (ab, ba):
        assert (state is None) == (truth is None)
        if state is not None and truth is not None:
            assert state.hidden == truth.hidden, repr((entries, owner, saved, cuts))
            assert all(row.updated_ms > reset for row in state.devices.values())


def test_a_replayed_hide_does_not_win_over_a_newer_start_of_another_instance() -> None:
    start = ProgressUpdate("u1", "i1", "episode", 600_000, 60_000, "start", "phone", T0 + 20, T0 + 20)
    hide = ProgressOp("hidden", "u1", "i1", "episode", 600_000, T0 + 10, f"{T0 + 10}-b")
    for order in ([start, hide], [hide, start]):
        state = replayed(NOTHING, order)[0]
        assert state is not None and not state.hidden, order


def test_an_update_from_before_another_instances_reset_stays_out_in_either_order() -> None:
    """A's update before B's reset, and a write newer than the reset (made after the restart)."""
    def progress(at: int, device: str) -> ProgressUpdate:
        return ProgressUpdate("u1", "i1", "episode", 600_000, at - T0, "progress", device, at, at)

    old, reset, newer = progress(T0 + 10, "a"), ProgressOp("reset", "u1", "i1", "track", 0, T0 + 20,
                                                           f"{T0 + 20}-b"), progress(T0 + 30, "c")
    for order in ([old, reset], [reset, old]):
        state = replayed(made(NOTHING, [newer]), order)[0]
        assert state is not None and set(state.devices) == {"c"}, order


# --- the pure decisions -----------------------------------------------------------------------------

def mark(run_id: str = "a", last_save_s: int = 1000, started_s: int = 900, duration_s: int = 0,
         offset_ms: int = 0) -> ServerMark:
    return ServerMark(run_id, started_s, last_save_s, duration_s, 2_000_000 + offset_ms, 2_000_000)


def test_decide() -> None:
    assert decide(None, mark()) == "replay"  # never saw the server: replay what the journal holds
    seen = mark().as_dict()
    assert decide(seen, mark()) == "none"
    assert decide(seen, mark(last_save_s=1005)) == "trim"
    assert decide(seen, mark(run_id="b", last_save_s=1005)) == "replay"  # restarted (from a snapshot)
    assert decide(seen, mark(last_save_s=990)) == "replay"  # an older snapshot was restored
    # A server without run_id: its start time (its clock minus its uptime) tells a restart, ±2 s jitter.
    anonymous = mark(run_id="").as_dict()
    assert decide(anonymous, mark(run_id="", started_s=901)) == "none"
    assert decide(anonymous, mark(run_id="", started_s=960)) == "replay"


def test_the_snapshot_point_leaves_margins() -> None:
    # Save started 3 s before LASTSAVE (1000 s), one second of LASTSAVE resolution, 2 s store timeout.
    assert snapshot_point_ms(mark(duration_s=3), 2000) == 997_000 - 1000 - 2000
    # The server's clock 5 s ahead of ours: our journal times are 5 s behind its LASTSAVE.
    assert snapshot_point_ms(mark(offset_ms=5000), 0) == 999_000 - 5000


# --- the files ----------------------------------------------------------------------------------------

def update(i: int) -> ProgressUpdate:
    return ProgressUpdate("u1", f"item{i}", "track", 300_000, i, "progress", "phone", T0 + i, T0 + i, 1.25)


def test_lines_round_trip() -> None:
    line = entry_line(123, PROGRESS_CODEC, update(7)).rstrip(b"\n")
    assert parse_line(line, PROGRESS_CODEC) == (123, update(7))
    op = ProgressOp("reset", "u1", "i1", "track", 0, T0, f"{T0}-ab")
    assert parse_line(entry_line(5, PROGRESS_CODEC, op).rstrip(b"\n"), PROGRESS_CODEC) == (5, op)


def test_segments_append_trim_restamp_and_survive_a_reopen(tmp_path: Path) -> None:
    files = progress_journal_files(tmp_path)
    files.open()
    files.append(1_000, [update(1), update(2)])
    files.rotate()
    files.append(5_000, [update(3)])
    files.rotate()
    files.rotate()  # nothing new since: no empty segment is added
    assert files.segments == 3
    assert files.trim(before_ms=1_001) == 2  # the first segment only
    files.append(9_000, [update(4)])
    files.close()

    again = progress_journal_files(tmp_path)
    again.open()
    entries, closed = again.entries()
    assert entries == [update(3), update(4)]
    again.restamp(entries, 20_000, closed)
    assert again.trim(before_ms=19_000) == 0  # their journal time is now that of the replay
    assert again.entries()[0] == [update(3), update(4)]
    assert again.trim(before_ms=20_001) == 2
    assert again.entries()[0] == []
    again.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    files = progress_journal_files(tmp_path)
    files.open()
    files.append(1_000, [update(1)])
    files.close()
    (segment,) = (tmp_path / "progress-journal").glob("*.log")
    with segment.open("ab") as fh:
        fh.write(entry_line(2_000, PROGRESS_CODEC, update(2))[:20])  # a crash mid-write: never acknowledged
    again = progress_journal_files(tmp_path)
    again.open()
    assert again.entries()[0] == [update(1)]
    again.close()


def test_a_replayed_older_mark_does_not_hide_a_later_write_from_a_reset() -> None:
    # Instance A marked played, then reset; B received an update just after the reset. B replays
    # first: the state holds B's update; A's mark (older than its event) must not move the state's
    # last write back in time, or A's reset then takes B's update for one from before it.
    played = ProgressOp("played", "u1", "i1", "track", 1000, T0 + 25, f"{T0 + 25}-a")
    reset = ProgressOp("reset", "u1", "i1", "track", 1000, T0 + 26, f"{T0 + 26}-b")
    update = ProgressUpdate("u1", "i1", "track", 1000, 0, "progress", "d0", T0 + 26, T0 + 27)
    truth, _ = made(NOTHING, [played, reset, update])
    b_first = replayed(replayed(NOTHING, [update]), [played, reset])[0]
    assert truth is not None and b_first is not None
    assert set(b_first.devices) == {"d0"} and b_first.updated_ms == T0 + 27
