"""Listener load: how many simulated players one server on this machine carries with zero stalls.

Two scenarios (issue 6):

- ``cold``: every player on its own FLAC track, played at aac-128, against a freshly started server
  (empty segment cache): every segment a player asks for is encoded for it (or by the server's
  prefetch just before). Goal ≥ 100 players on 2 cores.
- ``cached``: all players on a few tracks whose every segment was fetched once before the clock
  starts (the cache serves everything). Goal ≥ 2000 players.

Each trial starts ``revenge serve`` as a child process on generated FLAC tracks (so its CPU and RSS
are measured apart from this client), runs the same simulator as ``revenge bench``
(:mod:`revenge.loadtest`) and stops the server. A trial passes with zero stalls and zero errors.
``--search`` grows N geometrically until a trial fails and bisects to 10 %.

    .venv/bin/python benchmarks/bench_listeners.py cold -n 100               # one trial
    .venv/bin/python benchmarks/bench_listeners.py cold --search --start 10 --max 200
    .venv/bin/python benchmarks/bench_listeners.py cached --search --start 1000 --max 8000

Results (every trial's full report) go to ``bench-results/listeners-<scenario>.json``. Both the
server and this client share the machine's cores: the client's own CPU and event-loop lag are in
every report, so a run where the client was the bottleneck shows it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from revenge.loadtest.http import HttpClient  # noqa: E402
from revenge.loadtest.listener import PlayerProfile  # noqa: E402
from revenge.loadtest.report import format_table  # noqa: E402
from revenge.loadtest.run import LoadConfig, raise_fd_limit, run  # noqa: E402
from revenge.loadtest.search import search_limit  # noqa: E402
from revenge.security.keys import UserStore  # noqa: E402

CACHED_TRACKS = 4


@dataclass(frozen=True)
class Scenario:
    name: str
    distinct: bool  # a track per player (cold) or all players on CACHED_TRACKS (cached)
    warm: bool
    # Players start at this rate (the ramp), so the run measures carrying N players rather than a
    # flash crowd. A cold start costs the server more than a cached one: the first multivariant
    # playlist of an item measures its bandwidth on three segments per variant (9 encodes with the
    # default three-rung ladder) before the player gets its first segment.
    starts_per_second: float


SCENARIOS = {"cold": Scenario("cold", distinct=True, warm=False, starts_per_second=2.0),
             "cached": Scenario("cached", distinct=False, warm=True, starts_per_second=50.0)}


def ensure_tracks(media: Path, count: int, seconds: float) -> Path:
    """``count`` distinct stereo 44.1 kHz FLAC tracks of ``seconds`` under ``media`` (kept between
    runs: only the missing ones are made)."""
    from tests.mediagen import write_audio

    folder = media / f"flac-{seconds:g}s"
    made = 0
    for i in range(count):
        path = folder / f"Artist {i // 50:03d}" / f"Track {i:05d}.flac"
        if not path.exists():
            write_audio(path, seconds=seconds, kind="music", freq=110.0 + (i * 7.31) % 1800.0,
                        tags={"title": f"Track {i}", "artist": f"Artist {i // 50}"})
            made += 1
    if made:
        print(f"generated {made} FLAC tracks of {seconds:g} s in {folder}", file=sys.stderr, flush=True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(data_dir: Path, users: int) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    store = UserStore(data_dir / "users.db")
    try:
        return [store.add_user(f"bench{i}")[1] for i in range(users)]
    finally:
        store.close()


@contextlib.contextmanager
def serve(library: Path, data_dir: Path, env_extra: dict[str, str], timeout: float = 900.0) -> Iterator[
        tuple[str, int]]:
    """`revenge serve` in a child process; yields (url, pid) once its library scan is done."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update(REVENGE_LOG_LEVEL="warning", **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "revenge", "serve", "--data-dir", str(data_dir),
                             "--port", str(port), str(library)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_ready(url, proc, timeout)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    import asyncio

    async def healthz() -> dict[str, Any] | None:
        client = HttpClient(timeout=5)
        try:
            response = await client.request("GET", url + "healthz")
            return dict(response.json()) if response.status == 200 else None
        except Exception:
            return None
        finally:
            await client.aclose()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the server exited ({proc.returncode}): {err[-2000:]}")
        body = asyncio.run(healthz())
        if body is not None and not body.get("scan", {}).get("running"):
            return
        time.sleep(0.2)
    raise RuntimeError("the server did not finish its library scan in time")


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {"REVENGE_CACHE_MB": str(args.cache_mb), "REVENGE_AAC_CODER": args.aac_coder}
    if args.ladder:
        env["REVENGE_HLS_LADDER"] = args.ladder
    if args.encode_workers:
        env["REVENGE_ENCODE_WORKERS"] = str(args.encode_workers)
    if args.encode_queue_max:
        env["REVENGE_ENCODE_QUEUE_MAX"] = str(args.encode_queue_max)
    return env


def ramp_for(scenario: Scenario, n: int, args: argparse.Namespace) -> float:
    """Players start over this long: a few hundred listeners do not all press play in one second."""
    return args.ramp if args.ramp is not None else max(10.0, n / scenario.starts_per_second)


def trial(scenario: Scenario, n: int, args: argparse.Namespace, library: Path,
          keys: list[str]) -> dict[str, Any]:
    data_dir = args.work / "data"
    ramp = ramp_for(scenario, n, args)
    player = PlayerProfile(speed=args.speed, seeks_per_minute=args.seeks_per_minute, profile="aac-128",
                           max_bitrate=args.max_bitrate)
    with serve(library, data_dir, server_env(args)) as (url, pid):
        config = LoadConfig(
            url=url, keys=tuple(keys[:n]), listeners=n,
            duration=ramp + args.steady, player=player, seed=args.seed, ramp=ramp,
            source_codec="flac", shared=None if scenario.distinct else CACHED_TRACKS, warm=scenario.warm,
            server_pid=pid, show_progress=not args.quiet,
        )
        report = run(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    report["scenario"] = scenario.name
    report["server_settings"] = server_env(args)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("-n", "--listeners", type=int, default=100, help="players for a single trial")
    parser.add_argument("--search", action="store_true", help="find the largest N with zero stalls")
    parser.add_argument("--start", type=int, default=25, help="first N of the search")
    parser.add_argument("--max", type=int, default=200, help="largest N the search tries")
    parser.add_argument("--resolution", type=float, default=0.1, help="search precision (fraction of N)")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of load after the ramp")
    parser.add_argument("--ramp", type=float,
                        help="seconds over which players start (default: cold N/2, cached N/50; ≥ 10)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (1 = real time)")
    parser.add_argument("--seeks-per-minute", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-bitrate", type=int, help="bits/s the players declare (fewer variants offered)")
    parser.add_argument("--ladder", help="server REVENGE_HLS_LADDER (default: the server's)")
    parser.add_argument("--aac-coder", default="twoloop", choices=("twoloop", "fast"))
    parser.add_argument("--encode-workers", type=int, help="server REVENGE_ENCODE_WORKERS")
    parser.add_argument("--encode-queue-max", type=int, help="server REVENGE_ENCODE_QUEUE_MAX")
    parser.add_argument("--cache-mb", type=int, default=512)
    parser.add_argument("--track-seconds", type=float,
                        help="length of each generated track (default: long enough for the run)")
    parser.add_argument("--media", type=Path, default=ROOT / "bench-results" / "media",
                        help="where generated tracks are kept between runs")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "listeners-work")
    parser.add_argument("--out", type=Path,
                        help="JSON results (default bench-results/listeners-<scenario>.json)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]

    largest = args.max if args.search else args.listeners
    longest_run = (ramp_for(scenario, largest, args) + args.steady) * args.speed
    # + 3 s: the last segment stays ~3 s long. FFmpeg cannot seek to some points in the last few
    # thousand samples of a FLAC without a SEEKTABLE (what FFmpeg itself writes), and the server's
    # transcoder does not yet fall back when that seek fails (422 for the item).
    # Cold: two tracks of its own per player (it moves on to the second at the end of the first), each
    # 60 % of the longest run, so disk and generation time stay half of one long track per player.
    share = 0.6 if scenario.distinct else 1.2
    seconds = args.track_seconds or max(60.0, math.ceil(longest_run * share / 6) * 6) + 3.0
    tracks = 2 * largest if scenario.distinct else CACHED_TRACKS
    library = ensure_tracks(args.media, tracks, seconds)
    raise_fd_limit(largest)  # before the servers start: they inherit it
    shutil.rmtree(args.work, ignore_errors=True)
    # One user per player, as N listeners are N people: per-user work on the server (session caps,
    # a segment request refreshing the user's sessions on that item) stays what it is in real life.
    keys = make_keys(args.work / "data", largest)

    reports: list[dict[str, Any]] = []

    def passes(n: int) -> bool:
        report = trial(scenario, n, args, library, keys)
        reports.append(report)
        print(format_table(report), flush=True)
        print(flush=True)
        return bool(report["verdict"]["ok"])

    summary: dict[str, Any] = {"scenario": scenario.name, "track_seconds": seconds, "argv": sys.argv[1:]}
    if args.search:
        result = search_limit(passes, args.start, args.max, args.resolution)
        summary.update(largest_pass=result.largest_pass, smallest_fail=result.smallest_fail,
                       trials=result.trials)
    else:
        summary["passed"] = passes(args.listeners)

    print(trials_table(scenario.name, reports))
    if args.search:
        print(f"largest N with zero stalls and zero errors: {summary['largest_pass']} "
              f"(first failure at {summary['smallest_fail']})")
    out = args.out or ROOT / "bench-results" / f"listeners-{scenario.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps({"summary": summary, "reports": reports}, option=orjson.OPT_INDENT_2))
    print(f"wrote {out}")
    return 0


def trials_table(name: str, reports: list[dict[str, Any]]) -> str:
    head = (f"{'scenario':<8}{'N':>6}{'stalls':>8}{'errors':>8}{'503':>6}{'cold p95':>10}{'cached p95':>11}"
            f"{'startup p95':>12}{'hb p95':>8}{'srv CPU%':>9}{'srv RSS':>8}{'cli CPU%':>9}{'lag p99':>8}")
    lines = [head]
    for r in reports:
        server = r["server"] or {}
        lines.append(
            f"{name:<8}{r['config']['listeners']:>6}{r['verdict']['stalls']:>8}{r['verdict']['errors']:>8}"
            f"{r['busy_503']:>6}{r['segments']['cold_ms']['p95']:>10.0f}{r['segments']['cached_ms']['p95']:>11.1f}"
            f"{r['startup_ms']['p95']:>12.0f}{r['heartbeat_ms']['p95']:>8.1f}"
            f"{server.get('cpu_percent_mean', 0):>9.0f}{server.get('rss_mib_peak', 0):>8.0f}"
            f"{r['client']['pid_cpu_percent_mean'] or 0:>9.0f}{r['client']['loop_lag_ms_p99']:>8.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
