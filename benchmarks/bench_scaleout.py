"""Scale-out: ``revenge bench`` through nginx against one and two ``revenge serve`` instances sharing a
redis-server, cold and cached, and with the stream URLs routed by ``hash $item consistent`` (the shipped
``deploy/nginx.conf.template``) vs round robin (the same file with the stream location pointed at the
round-robin upstream).

Per trial: stalls, errors, segment latencies (cold/cached as the simulator classifies them), and the share
of segment requests that an instance served from its own cache: the sum over instances of
``revenge_segment_requests_total{cache="hit"}`` over all their segment requests (``hit``, ``miss``,
``inflight``: joined an encode already running there, e.g. its own prefetch), read from each instance's
/metrics by ``revenge bench --metrics-url`` after its warm-up and at the end: the measured pass only
(the warm-up's own misses would drag the cached share down); and the encode jobs on all instances
(``revenge_encode_seconds_count`` summed) per segment the players fetched: a job encodes one segment,
or several at a run's start, so the figure is for comparing routings: round robin makes a second
instance encode again what the first already has. Cold: fresh instances (empty caches), a distinct
track per player. Cached: ``--warm`` (every segment of the items in play fetched once through nginx
first), players sharing a few tracks. ``--smoke``: the smallest run, to check that it works.

    .venv/bin/python benchmarks/bench_scaleout.py [--quick | --smoke] [--out bench-results/scaleout.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mediagen import write_audio  # noqa: E402
from tests.redisfix import running_redis  # noqa: E402
from tests.scaleout import Instance, Nginx  # noqa: E402

RESULTS = ("hit", "miss", "inflight")


def make_library(base: Path, tracks: int, seconds: int) -> Path:
    music = base / "music"
    for i in range(tracks):
        write_audio(music / f"t{i:03d}.flac", seconds=seconds, kind="music", freq=110.0 + i * 37.0,
                    tags={"title": f"Track {i}"})
    return music


def add_user(store: str, data: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update(PYTHONPATH=str(ROOT), REVENGE_STORE=store, REVENGE_DATA_DIR=str(data))
    done = subprocess.run([sys.executable, "-m", "revenge", "user", "add", "bench"], env=env,
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def measured(report: dict[str, Any]) -> tuple[dict[str, float], float]:
    """The segment requests of the measured pass, summed over the instances, by cache result; and the
    encode jobs the instances ran meanwhile."""
    per_instance = [c or {} for c in report["instance_counters"].values()]
    return ({r: sum(c.get(f"segments_{r}", 0.0) for c in per_instance) for r in RESULTS},
            sum(c.get("encodes", 0.0) for c in per_instance))


@contextlib.contextmanager
def cluster(work: Path, name: str, n: int, library: Path, store: str,
            routing: str) -> Iterator[tuple[Nginx, list[Instance]]]:
    # One bench user plays every listener: the per-user session cap must not be what is measured.
    env = {"REVENGE_SESSIONS_PER_USER": "1000"}
    instances = [Instance(f"{name}-{k}", work / f"{name}-{k}", [library], store, env) for k in range(n)]
    nginx = Nginx(work / f"{name}-nginx", [i.address for i in instances])
    if routing == "round_robin":
        text = nginx.conf.read_text()
        nginx.conf.write_text(text.replace("proxy_pass http://revenge_by_item;", "proxy_pass http://revenge_any;"))
    try:
        for instance in instances:
            instance.start()
        nginx.start()
        yield nginx, instances
    finally:
        nginx.stop()
        for instance in instances:
            instance.stop()


def trial(work: Path, library: Path, store: str, key: str, n: int, routing: str, mode: str,
          args: argparse.Namespace) -> dict[str, Any]:
    name = f"{n}x-{routing}-{mode}"
    with cluster(work, name, n, library, store, routing) as (nginx, instances):
        out = work / f"{name}.json"
        listeners = args.cold_listeners if mode == "cold" else args.cached_listeners
        command = [sys.executable, "-m", "revenge", "bench", "--url", nginx.url, "--key", key,
                   "-n", str(listeners), "--duration", str(args.duration), "--speed", str(args.speed),
                   "--json", str(out), "--quiet", *(f"--metrics-url={i.url}" for i in instances)]
        if mode == "cached":
            command += ["--warm", "--shared", str(args.shared)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
        env["PYTHONPATH"] = str(ROOT)
        subprocess.run(command, env=env, check=False, timeout=args.duration * 10 + 300,
                       stdout=subprocess.DEVNULL)
        report = orjson.loads(out.read_bytes())
    delta, encodes = measured(report)
    total = sum(delta.values()) or 1.0
    row = {
        "instances": n, "routing": routing, "mode": mode, "listeners": listeners,
        "stalls": report["verdict"]["stalls"], "errors": report["verdict"]["errors"],
        "segments": report["segments"]["count"],
        "cold_p50_ms": report["segments"]["cold_ms"].get("p50"),
        "cold_p99_ms": report["segments"]["cold_ms"].get("p99"),
        "cached_p50_ms": report["segments"]["cached_ms"].get("p50"),
        "cached_p99_ms": report["segments"]["cached_ms"].get("p99"),
        "startup_p50_ms": report["startup_ms"].get("p50"),
        "own_cache_hit_share": delta["hit"] / total,
        "hit_or_own_inflight_share": (delta["hit"] + delta["inflight"]) / total,
        "segment_requests": delta,
        # Encode jobs on all instances per segment fetched: higher when instances repeat each other's work.
        "encodes": encodes,
        "encodes_per_segment": encodes / report["segments"]["count"] if report["segments"]["count"] else None,
        "client_overloaded": report["verdict"]["client_overloaded"],
    }
    print(f"  {name:>24}: stalls {row['stalls']} errors {row['errors']} segments {row['segments']} "
          f"own-cache hits {row['own_cache_hit_share']:.1%} "
          f"(+inflight {row['hit_or_own_inflight_share']:.1%}) "
          f"encode jobs/segment {row['encodes_per_segment'] or 0:.2f} "
          f"cold p50/p99 {row['cold_p50_ms']}/{row['cold_p99_ms']} ms "
          f"cached p50/p99 {row['cached_p50_ms']}/{row['cached_p99_ms']} ms", flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| instances | stream routing | mode | players | stalls | errors | own-cache hits | "
             "+ own in-flight | encode jobs / segment played | cold p50/p99 ms | cached p50/p99 ms |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['instances']} | {r['routing']} | {r['mode']} | {r['listeners']} | "
                     f"{r['stalls']} | {r['errors']} | {r['own_cache_hit_share']:.1%} | "
                     f"{r['hit_or_own_inflight_share']:.1%} | {r['encodes_per_segment'] or 0:.2f} | "
                     f"{r['cold_p50_ms']}/{r['cold_p99_ms']} | {r['cached_p50_ms']}/{r['cached_p99_ms']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="the smallest run: does it work")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "scaleout.json")
    args = parser.parse_args(argv)
    args.duration = 6.0 if args.smoke else 20.0 if args.quick else 60.0
    args.speed = 4.0
    args.cold_listeners = 2 if args.smoke else 4 if args.quick else 8
    args.cached_listeners = 4 if args.smoke else 60 if args.quick else 200
    args.shared = 2 if args.smoke else 4
    tracks = max(args.cold_listeners, args.shared) + 2
    with tempfile.TemporaryDirectory(prefix="revenge-bench-scaleout-") as tmp:
        work = Path(tmp)
        print("generating the library…", flush=True)
        library = make_library(work, tracks, seconds=30 if args.smoke else 300)
        rows = []
        with running_redis(work / "redis") as redis:
            key = add_user(redis.url, work / "cli")
            for n, routing in ((1, "hash"), (2, "hash"), (2, "round_robin")):
                for mode in ("cold", "cached"):
                    rows.append(trial(work, library, redis.url, key, n, routing, mode, args))
    text = table(rows)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({"rows": rows, "table": text, "cpus": os.cpu_count(),
                                       "quick": args.quick, "smoke": args.smoke}, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
