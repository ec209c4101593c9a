"""Browse and search on a large catalog, over real HTTP.

Builds a catalog of N tracks (default 200 000, in albums of 12 by 2 000 album artists, titles and names
drawn from a 3 000-word vocabulary, some with diacritics) directly through the Catalog API — no media
files: the browse routes read only the catalog — and gives one user a listening history (3 000 tracks
played, 1 to 5 times) in the progress store. Then it starts `revenge serve` on that data dir (no scan)
and times, one request at a time over a kept-alive connection, each route's answers: album lists in
several sorts (first pages and pages deep into the cursor), the caller's recently played and most
played albums, one album with its tracks and the caller's progress, search, the item list's text
query, artists; and the Subsonic face's getAlbumList2, search3 (an empty query pages through every
song, as Symfonium syncs) and getAlbum. Median and p95 per route, measured at the client (so an upper
bound of server time); the goal is 10 ms for the native routes, 20 ms for the Subsonic ones.

    .venv/bin/python benchmarks/bench_browse.py [--tracks 200000] [--requests 200] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from revenge.library.assemble import build_item  # noqa: E402
from revenge.library.catalog import Catalog  # noqa: E402
from revenge.library.model import MediaFile  # noqa: E402
from revenge.library.probe import Probe  # noqa: E402
from revenge.library.tags import Tags  # noqa: E402
from revenge.progress.model import ProgressUpdate  # noqa: E402
from revenge.progress.store_sqlite import SqliteStore  # noqa: E402
from revenge.security.keys import UserStore  # noqa: E402

TRACKS_PER_ALBUM = 12
GENRES = ("Rock", "Jazz", "Folk", "Electronic", "Hip-Hop", "Classical", "Pop", "Metal", "Soul", "Blues")
GOAL_MS = 10.0
SUBSONIC_GOAL_MS = 20.0


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ré", "sun", "tor", "va", "bel", "dra", "ex", "fin", "gö", "hal", "ion",
                 "jo", "ku", "lum", "mor", "né", "os", "pra", "qui", "ros", "sté", "tu", "ul", "vin", "wa"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize())
    return sorted(words)


def build_catalog(path: Path, tracks: int, seed: int = 5) -> list[str]:
    """The catalog of ``tracks`` tracks; answers the track ids."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    catalog = Catalog(path)
    ids: list[str] = []
    try:
        artists = [" ".join(rng.sample(words, rng.choice((1, 2)))) for _ in range(2000)]
        for n in range(tracks):
            a = n // TRACKS_PER_ALBUM
            artist = artists[a % len(artists)]
            album = " ".join(random.Random(a).sample(words, 2))
            relative = f"{artist}/{album} {a}/{n % TRACKS_PER_ALBUM + 1:02d}.flac"
            rate = 44_100
            media = MediaFile(f"/bench/{relative}", 5_000_000, 1, "flac", "flac", rate, 2, 900_000,
                              rate * rng.randint(120, 400))
            performers = (artist,) + ((rng.choice(artists),) if rng.random() < 0.1 else ())
            tags = Tags(title=" ".join(rng.sample(words, rng.randint(1, 4))), artists=performers,
                        album_artists=(artist,), album=f"{album} {a}", track_number=n % TRACKS_PER_ALBUM + 1,
                        track_total=TRACKS_PER_ALBUM, disc_number=1, disc_total=1,
                        year=1950 + a % 75, genres=(GENRES[a % len(GENRES)],))
            probe = Probe(media, tags, ())
            item = build_item("track", relative, [probe], folder_book=False)
            catalog.put_item(item, [probe], "/bench", relative, 1)
            ids.append(item.id)
            if n % 5000 == 4999:
                catalog.commit()
        catalog.commit()
    finally:
        catalog.close()
    return ids


async def build_history(path: Path, user_id: str, ids: list[str], seed: int = 9) -> None:
    """3 000 tracks played 1–5 times each, in the last weeks: each play a start and, 150 s later, a
    progress update at 150 s (past half of every track up to 300 s; past 240 s heard for the rest)."""
    rng = random.Random(seed)
    store = SqliteStore(path)
    await store.open()
    try:
        now = int(time.time() * 1000)
        updates: list[ProgressUpdate] = []
        for item_id in rng.sample(ids, 3000):
            for _ in range(rng.randint(1, 5)):
                start = now - rng.randint(3_600_000, 30 * 86_400_000)
                for position, ts, event in ((0, start, "start"), (150_000, start + 150_000, "progress"),
                                            (250_000, start + 250_000, "progress")):
                    updates.append(ProgressUpdate(user_id, item_id, "track", 400_000, position,
                                                  event, "bench", ts, now))  # type: ignore[arg-type]
        updates.sort(key=lambda u: u.event_ts_ms)
        for start in range(0, len(updates), 1000):
            await store.apply_batch(updates[start:start + 1000])
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(client: httpx.Client, paths: list[tuple[str, dict[str, Any]]]) -> list[float]:
    out = []
    for path, params in paths:
        started = time.perf_counter()
        response = client.get(path, params=params)
        out.append((time.perf_counter() - started) * 1000)
        failed = response.status_code != 200 or (
            path.startswith("/rest/") and response.json()["subsonic-response"]["status"] != "ok")
        if failed:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
    return out


def run(base: str, key: str, requests: int, tracks: int, seed: int = 11) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    words = vocabulary(random.Random(5))
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        def deep_cursors(sort: str) -> list[str]:
            """Cursors of pages 2..20 of ``sort``, to time pages past the first."""
            cursors, cursor = [], None
            for _ in range(20):
                params: dict[str, Any] = {"sort": sort, "limit": 50}
                if cursor:
                    params["cursor"] = cursor
                cursor = client.get("/api/v1/albums", params=params).json()["next_cursor"]
                if not cursor:
                    break
                cursors.append(cursor)
            return cursors

        album_ids = [a["id"] for a in client.get("/api/v1/albums", params={"sort": "random", "limit": 500})
                     .json()["albums"]]
        routes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for sort in ("alphabetical", "newest", "year", "artist", "random", "recently_played", "frequent"):
            routes[f"/albums?sort={sort}"] = [("/api/v1/albums", {"sort": sort, "limit": 50})] * requests
        for sort in ("alphabetical", "newest"):
            cursors = deep_cursors(sort)
            routes[f"/albums?sort={sort}, pages 2-20"] = [
                ("/api/v1/albums", {"sort": sort, "limit": 50, "cursor": rng.choice(cursors)})
                for _ in range(requests)]
        routes["/albums?genre=jazz&year_from=1990"] = [
            ("/api/v1/albums", {"genre": "Jazz", "year_from": 1990, "limit": 50})] * requests
        routes["/albums/{id}"] = [(f"/api/v1/albums/{rng.choice(album_ids)}", {}) for _ in range(requests)]
        routes["/search?q=<word prefix>"] = [
            ("/api/v1/search", {"q": rng.choice(words)[:rng.randint(3, 6)]}) for _ in range(requests)]
        routes["/search?q=<two words>"] = [
            ("/api/v1/search", {"q": f"{rng.choice(words)} {rng.choice(words)[:3]}"})
            for _ in range(requests)]
        routes["/items?q=<word prefix>"] = [
            ("/api/v1/items", {"q": rng.choice(words)[:4], "limit": 50}) for _ in range(requests)]
        routes["/artists"] = [("/api/v1/artists", {"limit": 50})] * requests
        # The Subsonic face over the same catalog (issue 15's goal: p95 <= 20 ms).
        rest = {"v": "1.16.1", "c": "bench", "f": "json", "apiKey": key}
        for kind in ("alphabeticalByName", "newest", "random", "recent", "frequent"):
            routes[f"subsonic getAlbumList2 type={kind}"] = [
                ("/rest/getAlbumList2", {**rest, "type": kind, "size": 50})] * requests
        routes["subsonic search3 query='' 500 songs"] = [
            ("/rest/search3", {**rest, "query": "", "songCount": 500, "albumCount": 0, "artistCount": 0,
                               "songOffset": 500 * rng.randrange(max(1, tracks // 500))})
            for _ in range(requests)]
        routes["subsonic search3 query=<word prefix>"] = [
            ("/rest/search3", {**rest, "query": rng.choice(words)[:4]}) for _ in range(requests)]
        routes["subsonic getAlbum"] = [("/rest/getAlbum", {**rest, "id": f"al-{rng.choice(album_ids)}"})
                                       for _ in range(requests)]
        for name, paths in routes.items():
            timed(client, paths[:10])  # warm: caches, prepared statements, the connection
            ms = sorted(timed(client, paths))
            results[name] = {"median_ms": round(statistics.median(ms), 2),
                             "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2), "max_ms": round(ms[-1], 2)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cache-dir", type=Path, help="keep the built catalog here and reuse it")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "browse.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="revenge-bench-browse-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        data = tmp / "data"
        data.mkdir()
        cached = args.cache_dir / f"catalog-{args.tracks}.db" if args.cache_dir else None
        started = time.perf_counter()
        if cached is not None and cached.exists():
            shutil.copy(cached, data / "catalog.db")
            ids = list(orjson.loads(cached.with_suffix(".ids.json").read_bytes()))
        else:
            ids = build_catalog(data / "catalog.db", args.tracks)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(data / "catalog.db", cached)
                cached.with_suffix(".ids.json").write_bytes(orjson.dumps(ids))
        build_seconds = time.perf_counter() - started
        users = UserStore(data / "users.db")
        try:
            user, key = users.add_user("bench")
        finally:
            users.close()
        asyncio.run(build_history(data / "progress.db", user.id, ids))

        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
        env.update(PYTHONPATH=str(ROOT), REVENGE_SCAN_ON_START="false", REVENGE_LOG_LEVEL="warning")
        proc = subprocess.Popen([sys.executable, "-m", "revenge", "serve", "--data-dir", str(data),
                                 "--port", str(port)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        results = run(base, key, args.requests, len(ids))
        width = max(len(k) for k in results)
        print(f"bench_browse: {args.tracks} tracks ({len(ids) // TRACKS_PER_ALBUM} albums), catalog ready in "
              f"{build_seconds:.0f} s, {args.requests} requests per route, {os.cpu_count()} CPUs")
        print(f"  {'route':<{width}}  median ms   p95 ms   max ms")
        for name, r in results.items():
            goal = SUBSONIC_GOAL_MS if name.startswith("subsonic") else GOAL_MS
            flag = "" if r["p95_ms"] <= goal else f"   > {goal:.0f} ms goal"
            print(f"  {name:<{width}}  {r['median_ms']:>9.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f}{flag}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps({"tracks": args.tracks, "requests": args.requests,
                                           "cpus": os.cpu_count(), "routes": results},
                                          option=orjson.OPT_INDENT_2))
        print(f"  written: {args.out}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
