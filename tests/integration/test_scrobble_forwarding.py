"""The forwarder against local ListenBrainz and Last.fm stand-ins (tests/scrobble_fakes.py) that check
its requests as the real services do: batches, marks, skips, backoff and Retry-After, a stopped link,
slow answers, a server killed mid-batch, a refused listen split out, now playing, and the per-user lease
across two instances on one Redis store. A real records store (SQLite; Redis for the lease); the
forwarder's clock is the test's, so backoff is checked without waiting for it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from revenge.config import Settings
from revenge.library.model import Item, ItemType, MediaFile
from revenge.library.tags import Tags
from revenge.playback.records import RecordStore, open_record_store
from revenge.playback.scrobbles import Scrobble, ServiceName
from revenge.scrobblers.links_redis import RedisLinkStore
from revenge.scrobblers.model import Link
from revenge.scrobblers.service import ScrobblerService
from tests.live import test_settings
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)
from tests.scrobble_fakes import FakeLastfm, FakeListenBrainz, Served

NOW = 1_760_000_000.0  # the forwarder's clock (seconds), also the Last.fm stand-in's


def item(n: int, *, artist: str | None = "The Band", item_type: ItemType = "track", **extra: Any) -> Item:
    media = MediaFile(path=f"/m/{n}.flac", size=1, mtime_ns=1, container="flac", codec="flac",
                      sample_rate=44_100, channels=2, bit_rate=1, sample_count=44_100 * 200)
    return Item(id=item_id(n), type=item_type, title=f"Song {n}", artist=artist, album="The Album",
                album_artist=None, track_number=n % 20 + 1, disc_number=None, genre=None, files=(media,),
                chapters=(), fingerprint="f", **extra)


def item_id(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[(n >> (5 * i)) % 32] for i in range(16))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class World:
    service: ScrobblerService
    records: RecordStore
    lb: FakeListenBrainz
    lastfm: FakeLastfm
    clock: Clock
    catalog: dict[str, Item]
    tags: dict[str, Tags]  # the full tags the catalog keeps per track (MusicBrainz ids)
    settings: Settings

    async def listen(self, n: int, started_s: float, *, user: str = "u1", **kind: Any) -> Scrobble:
        it = self.catalog.setdefault(item_id(n), item(n, **kind))
        record = Scrobble(user_id=user, item_id=it.id, item_type=it.type, started_at=int(started_s * 1000),
                          listened_ms=150_000, device_id="phone", source="client",
                          recorded_at=int(started_s * 1000) + 200_000)
        (result,) = await self.records.add_scrobbles([record])
        return result.scrobble

    async def link(self, service: ServiceName, user: str = "u1") -> None:
        if service == "listenbrainz":
            await self.service.link_listenbrainz(user, self.lb.add_user(f"lb-{user}"))
        else:
            _, token = await self.service.lastfm_authorize(None)
            self.lastfm.authorize(token, f"fm-{user}")
            await self.service.link_lastfm(user, token)

    def stored(self, service: ServiceName, user: str = "u1") -> list[int]:
        """Timestamps (s) the service holds for the user."""
        if service == "listenbrainz":
            return [x["listened_at"] for x in self.lb.stored(f"lb-{user}")]
        return [int(x["timestamp"]) for x in self.lastfm.stored(f"fm-{user}")]

    def fake(self, service: ServiceName) -> FakeListenBrainz | FakeLastfm:
        return self.lb if service == "listenbrainz" else self.lastfm


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeListenBrainz, Served, FakeLastfm, Served]]:
    lb, lastfm = FakeListenBrainz(), FakeLastfm()
    lb_server, lastfm_server = Served(lb.app()), Served(lastfm.app())
    try:
        yield lb, lb_server, lastfm, lastfm_server
    finally:
        lb_server.stop(force=True)
        lastfm_server.stop(force=True)


def reset(fake: FakeListenBrainz | FakeLastfm) -> None:
    fresh = type(fake)()
    for name, value in vars(fresh).items():
        if name not in ("api_key", "secret", "tokens", "sessions"):
            setattr(fake, name, value)


def settings_for(data: Path, lb_url: str, lastfm_url: str, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"listenbrainz_url": lb_url, "lastfm_api_url": lastfm_url + "/2.0/",
                               "lastfm_api_key": "k" * 32, "lastfm_api_secret": "s" * 32,
                               "scrobble_timeout_seconds": 2.0, "scrobble_retry_seconds": 10.0,
                               "listenbrainz_batch": 50, "lastfm_batch": 50, **overrides}
    return test_settings(data, **options)


@pytest.fixture
async def world(tmp_path: Path, fakes: tuple[FakeListenBrainz, Served, FakeLastfm, Served],
                request: pytest.FixtureRequest) -> AsyncIterator[World]:
    lb, lb_server, lastfm, lastfm_server = fakes
    reset(lb)
    reset(lastfm)
    overrides = getattr(request, "param", {})
    settings = settings_for(tmp_path, lb_server.url, lastfm_server.url, **overrides)
    records = open_record_store(settings)
    await records.open()
    catalog: dict[str, Item] = {}
    tags: dict[str, Tags] = {}
    clock = Clock()
    lastfm.now = clock  # Last.fm's 14 days count on the forwarder's clock
    service = await ScrobblerService.open(settings, records, catalog.get, tags_of=tags.get, start=False,
                                          clock=clock, rand=lambda: 0.5)
    try:
        yield World(service, records, lb, lastfm, clock, catalog, tags, settings)
    finally:
        await service.close()
        await records.close()


SERVICES: tuple[ServiceName, ...] = ("listenbrainz", "lastfm")


@pytest.mark.parametrize("service", SERVICES)
async def test_the_history_goes_out_in_batches_and_leaves_the_outbox(world: World,
                                                                     service: ServiceName) -> None:
    starts = [NOW - 3600 - 60 * i for i in range(120)]
    for n, start in enumerate(starts):
        await world.listen(n, start)
    await world.listen(500, NOW - 100, item_type="episode")  # never queued
    no_artist = await world.listen(501, NOW - 50, artist=None)
    await world.link(service)
    assert await world.records.outbox_size("u1", service) == 121
    await world.service.forwarder.run_once()
    assert sorted(world.stored(service)) == sorted(int(s) for s in starts)
    assert world.fake(service).calls.submits == 3 and world.fake(service).calls.duplicates == 0
    assert await world.records.outbox_size("u1", service) == 0
    skipped = await world.records.get_scrobble("u1", no_artist.id)
    assert skipped is not None
    assert [(d.service, d.state) for d in skipped.deliveries] == [(service, "skipped")]
    assert "artist" in (skipped.deliveries[0].reason or "")
    first = await world.records.get_scrobble("u1", f"{item_id(0)}-{int(starts[0] * 1000)}")
    assert first is not None and first.deliveries[0].state == "sent" and first.sent_at == int(NOW * 1000)
    status = await world.service.status("u1", service)
    assert status == {**status, "state": "active", "outbox": 0, "last_error": None,
                      "last_sent_at": int(NOW * 1000),
                      "account": "lb-u1" if service == "listenbrainz" else "fm-u1"}
    # The other service's outbox is untouched.
    other: ServiceName = "lastfm" if service == "listenbrainz" else "listenbrainz"
    assert await world.records.outbox_size("u1", other) == 121


async def test_what_is_sent_to_listenbrainz(world: World) -> None:
    mbid = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"
    world.tags[item_id(1)] = Tags(mb_recording_id=mbid, mb_release_id="not-a-uuid",
                                  mb_artist_ids=(mbid.upper(), "junk"))
    record = await world.listen(1, NOW - 500)
    await world.link("listenbrainz")
    await world.service.forwarder.run_once()
    (listen,) = world.lb.stored("lb-u1")
    assert listen["listened_at"] == record.started_at // 1000
    meta = listen["track_metadata"]
    assert (meta["artist_name"], meta["track_name"]) == ("The Band", "Song 1")
    assert meta["release_name"] == "The Album"
    assert meta["additional_info"]["duration_ms"] == 200_000
    assert meta["additional_info"]["tracknumber"] == 2
    assert meta["additional_info"]["recording_mbid"] == mbid
    assert meta["additional_info"]["artist_mbids"] == [mbid]  # canonical form; a malformed id is dropped
    assert "release_mbid" not in meta["additional_info"]


async def test_last_fm_skips_what_is_older_than_14_days_and_signs_every_call(world: World) -> None:
    old = await world.listen(1, NOW - 15 * 86_400)
    fresh = await world.listen(2, NOW - 86_400)
    await world.link("lastfm")
    await world.service.forwarder.run_once()
    assert world.stored("lastfm") == [fresh.started_at // 1000]
    too_old = await world.records.get_scrobble("u1", old.id)
    assert too_old is not None and too_old.deliveries[0].state == "skipped"
    assert "14 days" in (too_old.deliveries[0].reason or "")
    (entry,) = world.lastfm.stored("fm-u1")
    assert entry == {**entry, "artist": "The Band", "track": "Song 2", "album": "The Album",
                     "duration": "200"}


@pytest.mark.parametrize("service", SERVICES)
async def test_429_waits_as_long_as_retry_after_says(world: World, service: ServiceName) -> None:
    fake = world.fake(service)
    fake.retry_after = 40  # longer than the backoff (10 s × jitter): Retry-After decides
    await world.listen(1, NOW - 500)
    await world.link(service)
    fake.faults.append("429")
    await world.service.forwarder.run_once()
    assert world.stored(service) == [] and fake.calls.submits == 1
    status = await world.service.status("u1", service)
    assert status["last_error"]["permanent"] is False and status["state"] == "active"
    if service == "listenbrainz":  # Last.fm's 429 carries no header: the backoff (5..10 s) decides
        world.clock.now = NOW + 39
        await world.service.forwarder.run_once()
        assert fake.calls.submits == 1  # not yet
        world.clock.now = NOW + 41
    else:
        world.clock.now = NOW + 10.1
    await world.service.forwarder.run_once()
    assert fake.calls.submits == 2 and len(world.stored(service)) == 1
    assert (await world.service.status("u1", service))["last_error"] is None


async def test_a_down_service_is_retried_with_exponential_backoff_and_jitter(world: World) -> None:
    await world.listen(1, NOW - 500)
    await world.link("listenbrainz")
    world.lb.faults.extend(["down"] * 4)
    waits = []
    for _ in range(4):
        before = world.lb.calls.submits
        await world.service.forwarder.run_once()
        assert world.lb.calls.submits == before + 1
        key = ("u1", "listenbrainz")
        waits.append(world.service.forwarder._not_before[key] - world.clock.now)
        await world.service.forwarder.run_once()  # within the wait: nothing is sent
        assert world.lb.calls.submits == before + 1
        world.clock.now += waits[-1] + 0.01
    # rand = 0.5: three quarters of base × 2^(n-1)
    assert waits == pytest.approx([7.5, 15.0, 30.0, 60.0])
    await world.service.forwarder.run_once()
    assert len(world.stored("listenbrainz")) == 1


@pytest.mark.parametrize("service", SERVICES)
async def test_an_invalid_token_stops_the_link_until_it_is_linked_again(world: World,
                                                                        service: ServiceName) -> None:
    fake = world.fake(service)
    await world.listen(1, NOW - 500)
    await world.link(service)
    fake.faults.append("401" if service == "listenbrainz" else "badsession")
    await world.service.forwarder.run_once()
    status = await world.service.status("u1", service)
    assert status["state"] == "stopped" and status["last_error"]["permanent"] is True
    world.clock.now += 86_400
    await world.service.forwarder.run_once()
    assert fake.calls.submits == 1 and world.stored(service) == []  # never retried
    assert await world.records.outbox_size("u1", service) == 1  # nothing lost
    await world.link(service)
    await world.service.forwarder.run_once()
    assert len(world.stored(service)) == 1
    assert (await world.service.status("u1", service))["state"] == "active"


@pytest.mark.parametrize("world", [{"scrobble_timeout_seconds": 0.3}], indirect=True)
@pytest.mark.parametrize("service", SERVICES)
async def test_a_slow_answer_times_out_and_the_resend_is_deduplicated(world: World,
                                                                      service: ServiceName) -> None:
    fake = world.fake(service)
    fake.slow_seconds = 2.0
    for n in range(5):
        await world.listen(n, NOW - 1000 + n)
    await world.link(service)
    fake.faults.append("slow")
    await world.service.forwarder.run_once()  # stored by the service, the answer came too late
    assert await world.records.outbox_size("u1", service) == 5
    world.clock.now += 3600
    await world.service.forwarder.run_once()
    assert await world.records.outbox_size("u1", service) == 0
    assert len(world.stored(service)) == 5 and fake.calls.duplicates == 5  # the dedup absorbed the resend


@pytest.mark.parametrize("service", SERVICES)
async def test_a_server_killed_mid_batch_loses_nothing_and_duplicates_only_that_batch(
        world: World, fakes: tuple[FakeListenBrainz, Served, FakeLastfm, Served],
        service: ServiceName) -> None:
    server = fakes[1] if service == "listenbrainz" else fakes[3]
    fake = world.fake(service)
    for n in range(70):
        await world.listen(n, NOW - 10_000 + n)
    await world.link(service)
    fake.faults.extend([None, "hang"])  # type: ignore[list-item]  # the first batch passes, the second hangs
    drain = asyncio.create_task(world.service.forwarder.run_once())
    assert await asyncio.to_thread(fake.hung.wait, 30)
    await asyncio.to_thread(server.restart)
    await asyncio.wait_for(drain, 30)
    assert await world.records.outbox_size("u1", service) == 20  # the first 50 were marked
    world.clock.now += 3600
    await world.service.forwarder.run_once()
    assert await world.records.outbox_size("u1", service) == 0
    assert sorted(world.stored(service)) == [int(NOW - 10_000 + n) for n in range(70)]
    assert fake.calls.duplicates == 20  # only the batch whose answer was lost went twice


async def test_a_refused_listen_is_split_out_and_skipped_with_the_reason(world: World) -> None:
    for n in range(8):
        await world.listen(n, NOW - 1000 + n)
    world.lb.refuse_tracks.add("Song 5")
    await world.link("listenbrainz")
    await world.service.forwarder.run_once()
    assert len(world.stored("listenbrainz")) == 7
    poisoned = await world.records.get_scrobble("u1", f"{item_id(5)}-{int((NOW - 995) * 1000)}")
    assert poisoned is not None and poisoned.deliveries[0].state == "skipped"
    assert "refused track Song 5" in (poisoned.deliveries[0].reason or "")
    assert world.lb.calls.submits == 7  # 8 → 4+4 → 2+2 → 1+1: log2 splits, not one call per listen
    assert await world.records.outbox_size("u1", "listenbrainz") == 0


async def test_now_playing_goes_to_every_linked_service_and_is_not_stored(world: World) -> None:
    world.catalog[item_id(3)] = item(3)
    world.catalog[item_id(4)] = item(4, item_type="episode")
    await world.link("listenbrainz")
    await world.link("lastfm")
    world.service.now_playing("u1", item_id(3))
    world.service.now_playing("u1", item_id(4))  # not music: nothing sent
    world.service.now_playing("nobody", item_id(3))  # no links: nothing sent
    await world.service.forwarder.settle()
    (lb,) = world.lb.calls.now_playing
    assert "listened_at" not in lb and lb["track_metadata"]["track_name"] == "Song 3"
    (fm,) = world.lastfm.calls.now_playing
    assert (fm["method"], fm["artist"], fm["track"]) == ("track.updateNowPlaying", "The Band", "Song 3")
    assert world.stored("listenbrainz") == [] and world.stored("lastfm") == []


async def test_a_secret_that_no_longer_opens_stops_the_link(world: World) -> None:
    await world.listen(1, NOW - 500)
    await world.link("listenbrainz")
    link = await world.service.links.get("u1", "listenbrainz")
    assert link is not None
    await world.service.links.put(dataclasses.replace(link, secret=link.secret[:-4] + "AAAA"))
    await world.service.forwarder.run_once()
    status = await world.service.status("u1", "listenbrainz")
    assert status["state"] == "stopped" and "link the account again" in status["last_error"]["message"]
    assert world.lb.calls.submits == 0


async def test_two_instances_on_one_redis_store_never_send_the_same_batch_at_once(
        tmp_path: Path, redis_server: RedisServer,  # noqa: F811
        fakes: tuple[FakeListenBrainz, Served, FakeLastfm, Served]) -> None:
    lb, lb_server, _, lastfm_server = fakes
    reset(lb)
    lb.slow_seconds = 0.5
    settings = settings_for(tmp_path, lb_server.url, lastfm_server.url, store=redis_server.url)
    records = open_record_store(settings)
    await records.open()
    catalog = {item_id(n): item(n) for n in range(30)}
    instances = [await ScrobblerService.open(settings, records, catalog.get, start=False,
                                             links=RedisLinkStore(redis_server.url, 2.0, key_guard=True))
                 for _ in range(2)]
    try:
        await records.add_scrobbles([
            Scrobble("u1", item_id(n), "track", int((NOW - 1000 + n) * 1000), 1000, "d", "client", 1)
            for n in range(30)])
        await instances[0].link_listenbrainz("u1", lb.add_user("lb-u1"))
        lb.faults.append("slow")  # the first batch takes a while: the other instance comes meanwhile
        await asyncio.gather(*(s.forwarder.run_once() for s in instances))
        assert lb.calls.max_in_flight == 1 and lb.calls.submits == 1
        assert len(lb.stored("lb-u1")) == 30 and lb.calls.duplicates == 0
        assert await records.outbox_size("u1", "listenbrainz") == 0
        link = await instances[1].links.get("u1", "listenbrainz")
        assert isinstance(link, Link) and link.last_sent_at is not None
    finally:
        for s in instances:
            await s.close()
        await records.close()
