"""Pure progress rules: the issue's scenarios (1)-(5), the ordering property, and each rule alone."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given
from hypothesis import strategies as st

from revenge.library.model import Chapter, ItemType
from revenge.progress import rules
from revenge.progress.model import (
    DEFAULT_POLICIES,
    MAX_DEVICES_PER_ITEM,
    PROGRESS_EVENTS,
    STATE_HASH_FIELDS,
    CompletionPolicy,
    ProgressEvent,
    ProgressState,
    ProgressUpdate,
)

MIN = 60_000
T0 = 1_700_000_000_000  # an arbitrary "now" in ms
ITEM = "abcdefghijklmnop"


def upd(position_ms: int, client_ts: int | None, *, device: str = "phone", event: ProgressEvent = "progress",
        received: int | None = None, item_type: ItemType = "episode", duration_ms: int = 60 * MIN,
        rate: float = 1.0) -> ProgressUpdate:
    received_ms = received if received is not None else (client_ts if client_ts is not None else T0)
    return ProgressUpdate(
        user_id="1", item_id=ITEM, item_type=item_type, duration_ms=duration_ms,
        position_ms=rules.clamp_position(position_ms, duration_ms), event=event, device_id=device,
        event_ts_ms=rules.clamp_event_time(client_ts, received_ms), received_ms=received_ms,
        playback_rate=rate,
    )


def fold(updates: list[ProgressUpdate], state: ProgressState | None = None) -> ProgressState:
    policy = DEFAULT_POLICIES[updates[0].item_type]
    result = rules.apply_updates(state, updates, policy)
    assert result is not None
    return result


# --- the scenarios ---------------------------------------------------------------------------

def test_scenario_1_stale_offline_update_moves_only_its_device_row() -> None:
    t = T0
    state = fold([
        upd(10 * MIN, t, device="phone"),                         # phone at 10:00, then offline
        upd(10 * MIN, t + 1 * MIN, device="laptop", event="start"),
        upd(20 * MIN, t + 11 * MIN, device="laptop"),             # laptop plays 10:00 → 20:00
    ])
    # The phone's 12:00 happened at t+2min but arrives after the laptop's 20:00.
    state = fold([upd(12 * MIN, t + 2 * MIN, device="phone", received=t + 12 * MIN)], state)
    assert state.position_ms == 20 * MIN
    assert state.device_id == "laptop"
    assert state.event_ts_ms == t + 11 * MIN
    assert state.devices["phone"].position_ms == 12 * MIN
    assert state.devices["laptop"].position_ms == 20 * MIN


def test_scenario_2_seek_back_wins() -> None:
    state = fold([upd(20 * MIN, T0, device="laptop"), upd(5 * MIN, T0 + 1000, device="laptop", event="seek")])
    assert state.position_ms == 5 * MIN
    assert state.devices["laptop"].position_ms == 5 * MIN


def test_scenario_3_shuffled_offline_batch_ends_in_its_newest_event() -> None:
    events = [upd(i * 30_000, T0 + i * 30_000, received=T0 + 10 * MIN * 60) for i in range(40)]
    in_order = fold(events)
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        state = fold(shuffled)
        assert state.position_ms == 39 * 30_000
        assert state.event_ts_ms == T0 + 39 * 30_000
        assert state.devices["phone"].position_ms == 39 * 30_000
        assert state.completed == in_order.completed
    reversed_state = fold(list(reversed(events)))
    assert reversed_state.position_ms == 39 * 30_000


def test_scenario_4_clock_ahead_does_not_block_other_devices() -> None:
    hour = 60 * MIN
    # The phone's clock is 1 h ahead: its claim is clamped to when the server received it.
    ahead = upd(30 * MIN, T0 + hour, device="phone", received=T0)
    assert ahead.event_ts_ms == T0
    state = fold([ahead])
    later = upd(31 * MIN, T0 + 60_000, device="laptop", received=T0 + 60_000)
    state = fold([later], state)
    assert state.position_ms == 31 * MIN
    assert state.device_id == "laptop"


def test_scenario_5_episode_completion_thresholds() -> None:
    duration = 60 * MIN  # 95 % = 57:00, 30 s left = 59:30 → 57:00 comes first
    before = fold([upd(57 * MIN - 1, T0, duration_ms=duration)])
    assert not before.completed and before.completed_count == 0
    at = fold([upd(57 * MIN, T0 + 1000, duration_ms=duration)], before)
    assert at.completed and at.completed_count == 1 and at.play_count == 1 and at.completed_at == T0 + 1000
    again = fold([upd(58 * MIN, T0 + 2000, duration_ms=duration)], at)
    assert again.completed_count == 1  # staying in the zone does not count again
    short = 5 * MIN  # 30 s left (4:30) comes before 95 % (4:45)
    assert fold([upd(4 * MIN + 29_999, T0, duration_ms=short)]).completed is False
    assert fold([upd(4 * MIN + 30_000, T0, duration_ms=short)]).completed is True


def test_scenario_5_audiobook_completes_only_in_the_last_30_seconds() -> None:
    duration = 600 * MIN
    kwargs = {"item_type": "audiobook", "duration_ms": duration}
    assert not fold([upd(int(duration * 0.99), T0, **kwargs)]).completed  # 99 % is 6 min left
    assert not fold([upd(duration - 30_001, T0, **kwargs)]).completed
    done = fold([upd(duration - 30_000, T0, **kwargs)])
    assert done.completed and done.completed_count == 1


def _listen(start_ts: int, duration_ms: int, until_ms: int, step_ms: int = 10_000,
            first_event: ProgressEvent = "start") -> list[ProgressUpdate]:
    """One listen from 0 to ``until_ms`` in real time, one update every ``step_ms``."""
    out = [upd(0, start_ts, event=first_event, item_type="track", duration_ms=duration_ms)]
    pos = 0
    while pos < until_ms:
        pos = min(pos + step_ms, until_ms)
        out.append(upd(pos, start_ts + pos, item_type="track", duration_ms=duration_ms))
    return out


def test_scenario_5_track_play_counting() -> None:
    duration = 200_000  # 3:20 → 50 % is 100 s
    under = fold(_listen(T0, duration, 99_000, step_ms=1000))
    assert under.play_count == 0 and not under.completed
    at = fold(_listen(T0, duration, 100_000, step_ms=1000))
    assert at.play_count == 1 and at.completed and at.completed_count == 1
    # 100 progress updates in one listen = 1 play.
    hundred = fold(_listen(T0, duration, duration, step_ms=2000))
    assert len(_listen(T0, duration, duration, step_ms=2000)) == 101
    assert hundred.play_count == 1
    # The same track listened twice (start event each time) = 2 plays.
    twice = fold(_listen(T0, duration, duration) + _listen(T0 + 10 * MIN, duration, duration))
    assert twice.play_count == 2 and twice.completed_count == 2
    # Repeat without a start event: the position jumping back to the start begins a new listen.
    repeat = fold(_listen(T0, duration, duration)
                  + _listen(T0 + 10 * MIN, duration, duration, first_event="progress"))
    assert repeat.play_count == 2


def test_scenario_5_long_track_counts_at_240_seconds_heard() -> None:
    duration = 20 * MIN  # 50 % would be 10 min; 240 s comes first
    assert fold(_listen(T0, duration, 239_000, step_ms=1000)).play_count == 0
    assert fold(_listen(T0, duration, 240_000, step_ms=1000)).play_count == 1


def test_scenario_5_tracks_under_30_seconds_never_count() -> None:
    assert fold(_listen(T0, 29_999, 29_999, step_ms=1000)).play_count == 0
    assert fold(_listen(T0, 30_000, 30_000, step_ms=1000)).play_count == 1


def test_track_skipping_forward_is_not_heard() -> None:
    duration = 200_000
    state = fold([upd(0, T0, event="start", item_type="track", duration_ms=duration),
                  upd(150_000, T0 + 5_000, item_type="track", duration_ms=duration)])
    assert state.listened_ms == 6_000  # 5 s of wall time + the jitter slack, not 150 s
    assert state.play_count == 0
    seek = fold([upd(0, T0, event="start", item_type="track", duration_ms=duration),
                 upd(150_000, T0 + 200_000, event="seek", item_type="track", duration_ms=duration)])
    assert seek.listened_ms == 0


def test_track_playback_rate_scales_heard_time() -> None:
    duration = 200_000
    state = fold([upd(0, T0, event="start", item_type="track", duration_ms=duration, rate=2.0),
                  upd(100_000, T0 + 50_000, item_type="track", duration_ms=duration, rate=2.0)])
    assert state.listened_ms == 100_000 and state.play_count == 1


# --- the ordering property ---------------------------------------------------------------------------

@st.composite
def two_device_streams(draw: st.DrawFn) -> list[ProgressUpdate]:
    n = draw(st.integers(min_value=1, max_value=30))
    events = []
    for _ in range(n):
        device = draw(st.sampled_from(["phone", "laptop"]))
        # Client clocks: up to 2 h behind or 2 h ahead of the server, in whole seconds to get ties.
        client_ts = T0 + 1000 * draw(st.integers(min_value=-7200, max_value=7200))
        position = draw(st.integers(min_value=0, max_value=60 * MIN))
        event = draw(st.sampled_from(PROGRESS_EVENTS))
        events.append((device, client_ts, position, event))
    order = draw(st.permutations(range(n)))
    arrivals: list[ProgressUpdate] = []
    for k, i in enumerate(order):
        device, client_ts, position, event = events[i]
        received = T0 + 1000 * k  # arrival k reaches the server at T0 + k s
        arrivals.append(upd(position, client_ts, device=device, event=event, received=received))
    return arrivals


@given(two_device_streams())
def test_final_global_state_is_the_newest_event(arrivals: list[ProgressUpdate]) -> None:
    state = fold(arrivals)
    # Largest clamped event time; among equal times the later arrival wins.
    newest = max(range(len(arrivals)), key=lambda k: (arrivals[k].event_ts_ms, k))
    assert state.position_ms == arrivals[newest].position_ms
    assert state.device_id == arrivals[newest].device_id
    assert state.event_ts_ms == arrivals[newest].event_ts_ms
    for device in {u.device_id for u in arrivals}:
        mine = [k for k in range(len(arrivals)) if arrivals[k].device_id == device]
        last = max(mine, key=lambda k: (arrivals[k].event_ts_ms, k))
        assert state.devices[device].position_ms == arrivals[last].position_ms
    assert state.version == len(arrivals)
    assert state.first_played_at == min(u.event_ts_ms for u in arrivals)
    assert state.last_played_at == max(u.event_ts_ms for u in arrivals)


# --- single rules -----------------------------------------------------------------------------------

def test_clamps() -> None:
    assert rules.clamp_event_time(None, 5) == 5
    assert rules.clamp_event_time(9, 5) == 5
    assert rules.clamp_event_time(3, 5) == 3
    assert rules.clamp_position(-1, 100) == 0
    assert rules.clamp_position(101, 100) == 100
    assert rules.clamp_position(50, 100) == 50


def test_completed_episode_played_again_is_not_completed_until_it_ends_again() -> None:
    done = fold([upd(59 * MIN, T0)])
    assert done.completed
    # A player that parks at 0 after the end (pause/stop) keeps it completed.
    parked = fold([upd(0, T0 + 1000, event="stop")], done)
    assert parked.completed
    replay = fold([upd(0, T0 + 2000, event="start"), upd(10 * MIN, T0 + 3000)], done)
    assert not replay.completed and replay.completed_count == 1
    finished = fold([upd(59 * MIN, T0 + 4000)], replay)
    assert finished.completed and finished.completed_count == 2 and finished.play_count == 2


def test_short_episode_is_not_completed_by_opening_it() -> None:
    assert not fold([upd(0, T0, event="start", duration_ms=20_000)]).completed
    assert fold([upd(1, T0, duration_ms=20_000)]).completed


def test_start_unhides_and_stale_start_does_not() -> None:
    state = fold([upd(10 * MIN, T0)])
    hidden = rules.set_hidden(state, "1", ITEM, "episode", 60 * MIN, True, T0 + 1)
    assert hidden.hidden and hidden.version == state.version + 1
    assert fold([upd(11 * MIN, T0 + 2000)], hidden).hidden
    assert fold([upd(11 * MIN, T0 - 2000, event="start")], hidden).hidden
    assert not fold([upd(11 * MIN, T0 + 2000, event="start")], hidden).hidden


def test_mark_played_and_unplayed() -> None:
    state = fold([upd(10 * MIN, T0)])
    played = rules.mark_played(state, "1", ITEM, "episode", 60 * MIN, T0 + 5000)
    assert played.position_ms == 60 * MIN and played.completed and played.completed_count == 1
    assert played.completed_at == T0 + 5000 and played.event_ts_ms == T0 + 5000
    # An offline update from before the mark does not undo it.
    replayed = fold([upd(12 * MIN, T0 + 1000, received=T0 + 9000)], played)
    assert replayed.completed and replayed.position_ms == 60 * MIN
    unplayed = rules.mark_unplayed(played, "1", ITEM, "episode", 60 * MIN, T0 + 6000)
    assert unplayed.position_ms == 0 and not unplayed.completed and unplayed.completed_at is None
    assert unplayed.completed_count == 1 and unplayed.version == played.version + 1
    fresh = rules.mark_played(None, "1", ITEM, "track", 200_000, T0)
    assert fresh.completed and fresh.position_ms == 200_000 and fresh.play_count == 0


def test_device_rows_are_bounded() -> None:
    updates = [upd(i * 1000, T0 + i, device=f"d{i:03d}") for i in range(MAX_DEVICES_PER_ITEM + 5)]
    state = fold(updates)
    assert len(state.devices) == MAX_DEVICES_PER_ITEM
    assert "d000" not in state.devices and f"d{MAX_DEVICES_PER_ITEM + 4:03d}" in state.devices


def test_resume_rules() -> None:
    episode = DEFAULT_POLICIES["episode"]
    track = DEFAULT_POLICIES["track"]
    assert rules.resume_position_ms(None, episode) == 0
    mid = fold([upd(20 * MIN, T0)])
    assert rules.resume_position_ms(mid, episode) == 20 * MIN
    tail = dataclasses.replace(mid, position_ms=57 * MIN)  # the last 5 %, but say not completed
    assert rules.resume_position_ms(dataclasses.replace(tail, completed=False), episode) == 0
    just_before = dataclasses.replace(mid, position_ms=57 * MIN - 1)
    assert rules.resume_position_ms(just_before, episode) == 57 * MIN - 1
    assert rules.resume_position_ms(dataclasses.replace(mid, completed=True), episode) == 0
    short_track = fold([upd(2 * MIN, T0, item_type="track", duration_ms=9 * MIN)])
    assert rules.resume_position_ms(short_track, track) == 0
    long_track = fold([upd(2 * MIN, T0, item_type="track", duration_ms=10 * MIN)])
    assert rules.resume_position_ms(long_track, track) == 2 * MIN


def _state(item_id: str, **kw: object) -> ProgressState:
    base = ProgressState(user_id="1", item_id=item_id, item_type="episode", duration_ms=60 * MIN,
                         position_ms=MIN, last_played_at=T0)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_continue_listening_filter_and_order() -> None:
    now = T0 + 1000
    states = [
        _state("a" * 16, last_played_at=T0 - 5),
        _state("b" * 16, last_played_at=T0),
        _state("c" * 16, position_ms=29_999),                       # not started
        _state("d" * 16, completed=True),
        _state("e" * 16, hidden=True),
        _state("f" * 16, last_played_at=now - rules.CONTINUE_MAX_AGE_MS - 1),  # too old
        _state("g" * 16, last_played_at=now - rules.CONTINUE_MAX_AGE_MS),
        _state("h" * 16, item_type="audiobook", last_played_at=T0 + 1),
        _state("i" * 16, position_ms=30_000, last_played_at=T0),
    ]
    picked = [s.item_id[0] for s in rules.select_continue(states, None, 20, now)]
    assert picked == ["h", "b", "i", "a", "g"]
    assert [s.item_id[0] for s in rules.select_continue(states, "episode", 2, now)] == ["b", "i"]
    assert [s.item_id[0] for s in rules.select_continue(states, "audiobook", 20, now)] == ["h"]
    assert rules.select_continue(states, "track", 20, now) == []


def test_chapter_at() -> None:
    chapters = [Chapter(0, "One", 1000, 60_000), Chapter(1, "Two", 60_000, 120_000),
                Chapter(2, "Three", 120_000, 180_000)]
    assert rules.chapter_at([], 5) is None
    first = rules.chapter_at(chapters, 0)
    assert first is not None and first.index == 0 and first.position_in_chapter_ms == 0
    two = rules.chapter_at(chapters, 61_500)
    assert two is not None and two.index == 1 and two.title == "Two" and two.position_in_chapter_ms == 1500
    boundary = rules.chapter_at(chapters, 120_000)
    assert boundary is not None and boundary.index == 2 and boundary.position_in_chapter_ms == 0
    end = rules.chapter_at(chapters, 180_000)
    assert end is not None and end.index == 2 and end.position_in_chapter_ms == 60_000


def test_policies_are_configurable() -> None:
    strict = CompletionPolicy(mode="position", complete_percent=99.0, complete_remaining_ms=None)
    state = rules.apply_update(None, upd(int(59.0 * MIN), T0), strict)
    assert not state.completed
    assert rules.apply_update(None, upd(int(59.5 * MIN), T0), strict).completed


def test_state_hash_round_trip() -> None:
    state = fold(_listen(T0, 200_000, 150_000))
    restored = ProgressState.from_hash(
        {k.encode(): v.encode() for k, v in state.to_hash().items()}, state.devices)
    assert restored == state
    assert "completed_at" not in rules.new_state("1", ITEM, "track", 10).to_hash()


def test_state_hash_fields_are_the_dataclass_fields_in_order() -> None:
    # The Redis store builds states positionally from rows in STATE_HASH_FIELDS order (state_row_json).
    names = [f.name for f in dataclasses.fields(ProgressState)]
    assert names == [*STATE_HASH_FIELDS, "devices"]


def test_make_update_clamps_position_and_event_time() -> None:
    u = rules.make_update("1", ITEM, "episode", 60 * MIN, 61 * MIN, "seek", "phone", T0 + 5000, T0)
    assert u.position_ms == 60 * MIN and u.event_ts_ms == T0 and u.received_ms == T0
    v = rules.make_update("1", ITEM, "episode", 60 * MIN, -5, "start", "phone", None, T0, playback_rate=2.0)
    assert v.position_ms == 0 and v.event_ts_ms == T0 and v.playback_rate == 2.0


def test_playback_rate_bounds() -> None:
    assert rules.is_valid_playback_rate(16.0) and rules.is_valid_playback_rate(0.0625)
    assert not rules.is_valid_playback_rate(0.0)
    assert not rules.is_valid_playback_rate(16.01)
    assert not rules.is_valid_playback_rate(-1.0)
