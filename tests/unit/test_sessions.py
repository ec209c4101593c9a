"""Playback sessions without a server: the pure rules, and SessionService on the memory store with an
injected clock (cap, replacement on the same device, ownership, idle expiry, end callbacks)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.config import load_settings
from revenge.library.model import Item, MediaFile
from revenge.playback import sessions as rules
from revenge.playback.decide import Decision
from revenge.playback.service import ItemGone, SessionService
from revenge.playback.session_store import MemorySessionStore
from revenge.playback.sessions import EndReason, Session, SessionCapReached
from revenge.progress.model import DEVICE_ID_RE
from revenge.progress.service import ProgressService

IDLE_S = 60.0
IDLE_MS = 60_000
T0 = 1_800_000_000.0
HLS = Decision("hls", ("codec_not_supported",), ("aac-256", "aac-128"))
DIRECT = Decision("direct", (), ())
ITEM = "abcdefghijklmnop"


def session(sid: str = "s" * 22, device: str = "phone", last_active_ms: int = 0, user: str = "1") -> Session:
    return Session(id=sid, user_id=user, device_id=device, item_id=ITEM, mode="direct", profiles=(),
                   reasons=(), resume_ms=0, created_ms=0, token_expires_at=86_400,
                   last_active_ms=last_active_ms)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ended() -> list[tuple[str, EndReason]]:
    return []


@pytest.fixture
def service(clock: Clock, ended: list[tuple[str, EndReason]]) -> SessionService:
    svc = SessionService(MemorySessionStore(IDLE_MS), idle_seconds=IDLE_S, cap=3, clock=clock)
    svc.on_end(lambda s, reason: ended.append((s.id, reason)))
    return svc


async def start(svc: SessionService, device: str, user: str = "1", decision: Decision = DIRECT) -> Session:
    return await svc.start(user, device, ITEM, decision, 0, 1_800_086_400)


# --- pure rules ---------------------------------------------------------------------------------------

def test_plan_start_counts_live_sessions_on_other_devices_only() -> None:
    existing = [session("a" * 22, "one", 1_000), session("b" * 22, "two", 1_000),
                session("c" * 22, "old", -IDLE_MS)]  # idle for a while
    plan = rules.plan_start(existing, "three", cap=2, now_ms=1_000, idle_ms=IDLE_MS)
    assert not plan.accepted and plan.replaced == ()
    assert [s.id for s in plan.expired] == ["c" * 22]  # dropped even when refused
    plan = rules.plan_start(existing, "two", cap=2, now_ms=1_000, idle_ms=IDLE_MS)
    assert plan.accepted and [s.id for s in plan.replaced] == ["b" * 22]
    plan = rules.plan_start(existing, "three", cap=3, now_ms=1_000, idle_ms=IDLE_MS)
    assert plan.accepted and plan.replaced == ()


def test_idle_deadline_is_exclusive() -> None:
    s = session(last_active_ms=10_000)
    assert not rules.is_idle(s, 10_000 + IDLE_MS - 1, IDLE_MS)
    assert rules.is_idle(s, 10_000 + IDLE_MS, IDLE_MS)


def test_heartbeat_and_touch_never_move_activity_back() -> None:
    s = session(last_active_ms=5_000)
    assert rules.touch(s, 4_000).last_active_ms == 5_000
    beat = rules.heartbeat(s, 12_345, "paused", 6_000)
    assert (beat.position_ms, beat.state, beat.last_active_ms) == (12_345, "paused", 6_000)
    assert rules.heartbeat(s, -5, "playing", 6_000).position_ms == 0


def test_player_states_map_to_progress_events() -> None:
    assert [rules.progress_event_for(s) for s in rules.PLAYER_STATES] == ["progress", "pause", "progress",
                                                                          "stop"]


def test_session_ids_are_128_random_bits_in_url_safe_text() -> None:
    ids = {rules.new_session_id() for _ in range(2_000)}
    assert len(ids) == 2_000
    assert all(rules.is_session_id(i) for i in ids)
    # Not time-ordered: consecutive ids share no common prefix beyond chance.
    ordered = [rules.new_session_id() for _ in range(200)]
    assert ordered != sorted(ordered)
    assert not rules.is_session_id("x" * 21) and not rules.is_session_id("x" * 21 + "/")


@given(position=st.integers(0, 10**12), last=st.integers(0, 10**13),
       device=st.from_regex(DEVICE_ID_RE, fullmatch=True),
       state=st.sampled_from(rules.PLAYER_STATES), mode=st.sampled_from(["direct", "hls"]),
       profiles=st.lists(st.sampled_from(["aac-64", "aac-256", "opus-128", "flac"]), max_size=4),
       kind=st.sampled_from(rules.KINDS))
def test_storage_form_round_trips(position: int, last: int, device: str, state: rules.PlayerState,
                                  mode: rules.Mode, profiles: list[str], kind: rules.Kind) -> None:
    s = dataclasses.replace(session(device=device, last_active_ms=last), position_ms=position, state=state,
                            mode=mode, profiles=tuple(profiles), kind=kind)
    assert rules.decode(rules.encode_static(s), rules.encode_live(s)) == s


def test_item_sessions_keep_their_stored_form_and_an_unknown_kind_is_refused() -> None:
    s = session()
    assert b"kind" not in rules.encode_static(s)  # sessions stored before albums still decode
    album = dataclasses.replace(s, kind="album")
    bad = rules.encode_static(album).replace(b'"album"', b'"box"')
    with pytest.raises(ValueError):
        rules.decode(bad, rules.encode_live(album))


def test_decode_refuses_halves_of_different_sessions() -> None:
    a, b = session(device="one"), session(device="two")
    with pytest.raises(ValueError):
        rules.decode(rules.encode_static(a), rules.encode_live(b))
    with pytest.raises(ValueError):
        rules.decode(rules.encode_static(a), "not a live record")


# --- the service on the memory store ------------------------------------------------------------------

async def test_only_the_owner_sees_heartbeats_or_stops_a_session(service: SessionService) -> None:
    mine = await start(service, "phone", user="1")
    assert await service.get("1", mine.id) == mine
    assert await service.get("2", mine.id) is None
    assert await service.stop("2", mine.id) is None
    assert await service.store.heartbeat("2", mine.id, 5_000, "playing", service.now_ms()) is None
    assert await service.get("1", mine.id) == mine  # untouched by the other user's attempts


async def test_cap_refuses_a_new_device_but_not_a_replacement(service: SessionService,
                                                              ended: list[tuple[str, EndReason]]) -> None:
    first = [await start(service, f"device-{i}") for i in range(3)]
    with pytest.raises(SessionCapReached) as refused:
        await start(service, "device-3")
    assert refused.value.cap == 3 and "at most 3" in str(refused.value)
    assert [await service.get("1", s.id) for s in first] == first  # nothing was dropped
    replacement = await start(service, "device-1")
    assert await service.get("1", first[1].id) is None
    assert await service.get("1", replacement.id) == replacement
    assert ended == [(first[1].id, "replaced")]
    # Other users have their own cap.
    assert (await start(service, "device-3", user="2")).user_id == "2"


async def test_a_stopped_session_frees_its_place(service: SessionService,
                                                 ended: list[tuple[str, EndReason]]) -> None:
    sessions = [await start(service, f"d{i}") for i in range(3)]
    assert await service.stop("1", sessions[0].id) == sessions[0]
    assert await service.stop("1", sessions[0].id) is None
    assert ended == [(sessions[0].id, "stopped")]
    await start(service, "d9")


async def test_idle_sessions_end_and_the_reaper_reports_them(service: SessionService, clock: Clock,
                                                             ended: list[tuple[str, EndReason]]) -> None:
    quiet = await start(service, "quiet")
    busy = await start(service, "busy", decision=HLS)
    clock.now += IDLE_S - 1
    assert await service.touch("1", ITEM) == 2  # a segment request refreshes both sessions on the item
    clock.now += IDLE_S - 1
    assert await service.reap_once() == []
    await service.store.heartbeat("1", busy.id, 1_000, "playing", service.now_ms())
    await service.touch("2", ITEM)  # another user's segment requests refresh nothing of user 1
    clock.now += 1
    assert [s.id for s in await service.reap_once()] == [quiet.id]
    assert ended == [(quiet.id, "idle")]
    assert await service.get("1", quiet.id) is None
    assert await service.get("1", busy.id) is not None
    clock.now += IDLE_S
    assert await service.get("1", busy.id) is None  # past its deadline before the reaper runs
    assert [s.id for s in await service.reap_once()] == [busy.id]
    assert ended[-1] == (busy.id, "idle")
    assert service.watched_count() == 0


async def test_idle_sessions_do_not_count_against_the_cap(service: SessionService, clock: Clock,
                                                          ended: list[tuple[str, EndReason]]) -> None:
    old = [await start(service, f"d{i}") for i in range(3)]
    clock.now += IDLE_S
    await start(service, "new")
    assert sorted(ended) == sorted((s.id, "idle") for s in old)


async def test_a_failing_end_callback_does_not_stop_the_others(service: SessionService,
                                                               ended: list[tuple[str, EndReason]]) -> None:
    def broken(s: Session, reason: EndReason) -> None:
        raise RuntimeError("boom")

    unregister = service.on_end(broken)
    s = await start(service, "phone")
    await service.stop("1", s.id)
    assert ended == [(s.id, "stopped")]
    unregister()


async def test_start_callbacks_see_accepted_sessions_only_and_a_failing_one_is_contained(
        service: SessionService) -> None:
    started: list[str] = []

    def broken(s: Session) -> None:
        raise RuntimeError("boom")

    service.on_start(broken)
    unregister = service.on_start(lambda s: started.append(s.device_id))
    for device in ("one", "two", "three"):
        await start(service, device)
    with pytest.raises(SessionCapReached):
        await start(service, "four")  # refused: no "now playing" for it
    assert started == ["one", "two", "three"]
    unregister()
    await start(service, "one")  # replaces that device's session; unregistered: not seen
    assert started == ["one", "two", "three"]


async def test_the_reaper_task_ends_idle_sessions_by_itself(ended: list[tuple[str, EndReason]]) -> None:
    svc = SessionService(MemorySessionStore(200), idle_seconds=0.2, cap=4)
    svc.on_end(lambda s, reason: ended.append((s.id, reason)))
    svc.start_reaper()
    try:
        s = await start(svc, "phone")
        for _ in range(200):
            if ended:
                break
            await asyncio.sleep(0.05)
        assert ended == [(s.id, "idle")]
    finally:
        await svc.close()


def _flac_item(item_id: str, seconds: int = 600) -> Item:
    media = MediaFile("/m/x.flac", 1_000_000, 0, "flac", "flac", 8_000, 1, 13_000, 8_000 * seconds)
    return Item(item_id, "episode", "t", None, None, None, None, None, None, (media,), (), "fp")


async def test_heartbeats_feed_the_progress_batcher(tmp_path: Path, clock: Clock) -> None:
    settings = load_settings(None, env={}, data_dir=tmp_path)
    progress = await ProgressService.open(settings)
    item = _flac_item(ITEM)
    svc = SessionService(MemorySessionStore(IDLE_MS), idle_seconds=IDLE_S, cap=4, progress=progress,
                         item_of=lambda item_id: item if item_id == ITEM else None, clock=clock)
    try:
        s = await start(svc, "phone")
        clock.now += 5
        result = await svc.heartbeat("1", s.id, 125_000, "playing")
        assert result is not None
        assert (result.session.position_ms, result.session.state) == (125_000, "playing")
        assert result.session.last_active_ms == int(clock.now * 1000)
        assert (result.progress.position_ms, result.progress.device_id) == (125_000, "phone")
        paused = await svc.heartbeat("1", s.id, 10**9, "paused")  # past the end: clamped to the item
        assert paused is not None and paused.session.position_ms == item.duration_ms
        stored = await progress.get("1", ITEM)
        assert stored is not None and stored.position_ms == item.duration_ms
        assert await svc.heartbeat("2", s.id, 1_000, "playing") is None
    finally:
        await progress.close()


async def test_an_album_session_tells_its_track_callbacks_when_another_track_plays(tmp_path: Path,
                                                                                   clock: Clock) -> None:
    settings = load_settings(None, env={}, data_dir=tmp_path)
    progress = await ProgressService.open(settings)
    tracks = [dataclasses.replace(_flac_item(f"track{n}aaaaaaaaaa"[:16], 60), type="track") for n in (1, 2)]
    svc = SessionService(MemorySessionStore(IDLE_MS), idle_seconds=IDLE_S, cap=4, progress=progress,
                         item_of=lambda item_id: None,
                         album_of=lambda album_id: tracks if album_id == ITEM else [], clock=clock)
    told: list[str | None] = []
    svc.on_track(lambda s: told.append(svc.playing_item_id(s)))
    try:
        s = await svc.start("1", "desk", ITEM, HLS, 0, 1_800_086_400, kind="album")
        assert svc.playing_item_id(s) == tracks[0].id
        clock.now += 5
        assert (await svc.heartbeat("1", s.id, 5_000, "playing")) is not None
        assert told == []  # still the first track
        clock.now += 55  # within the idle timeout, and long enough to have heard the rest of track 1
        result = await svc.heartbeat("1", s.id, 62_000, "playing")
        assert result is not None and (result.item.id, result.offset_ms) == (tracks[1].id, 2_000)
        assert told == [tracks[1].id]
        first = await progress.get("1", tracks[0].id)
        assert first is not None and first.play_count == 1
        svc_gone = SessionService(MemorySessionStore(IDLE_MS), idle_seconds=IDLE_S, cap=4, progress=progress,
                                  item_of=lambda item_id: None, album_of=lambda album_id: [], clock=clock)
        gone = await svc_gone.start("1", "desk", ITEM, HLS, 0, 1_800_086_400, kind="album")
        assert svc_gone.playing_item_id(gone) is None
        with pytest.raises(ItemGone):
            await svc_gone.heartbeat("1", gone.id, 1_000, "playing")
    finally:
        await progress.close()
