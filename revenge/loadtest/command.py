"""``revenge bench``: the command line of the load simulator.

    revenge bench --url http://127.0.0.1:7700 --key KEY -n 100 --duration 60 --speed 1 --seed 1 \\
        [--json result.json]

Exit status: 0 when the run had no stall and no error, 1 when it had some, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from revenge.loadtest.listener import PlayerProfile
from revenge.loadtest.report import format_table
from revenge.loadtest.run import BenchError, LoadConfig, run

KEY_ENV = "REVENGE_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:7700")
    parser.add_argument("--key", action="append", default=[],
                        help=f"API key (repeat for several users: players take them in turn; each user has "
                             f"its own session cap). Default: ${KEY_ENV}")
    parser.add_argument("--keys-file", type=Path, help="file with one API key per line (kept out of `ps`)")
    parser.add_argument("-n", "--listeners", type=int, default=10, help="simulated players (default 10)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="playback speed: 1 = real time, 4 = four media seconds per second")
    parser.add_argument("--seed", type=int, default=1, help="seed of the seeks and start order")
    parser.add_argument("--ramp", type=float, help="seconds over which players start (default min(10, D/4))")
    parser.add_argument("--buffer", type=int, default=3, help="segments kept ahead of the playhead")
    parser.add_argument("--start-buffer", type=float, default=2.5,
                        help="media seconds buffered before playback starts or resumes after a seek")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats")
    parser.add_argument("--seeks-per-minute", type=float, default=0.5,
                        help="random seeks per player per minute (0: none)")
    parser.add_argument("--profile", default="aac-128",
                        help="variant to play when offered (default aac-128; '' = the server's first)")
    parser.add_argument("--codecs", default="aac",
                        help="codecs the players declare, comma-separated (default aac: HLS, never direct)")
    parser.add_argument("--max-bitrate", type=int, help="bits/s the players declare as their limit")
    parser.add_argument("--type", dest="item_type", default="track",
                        help="item type to play: track, episode, audiobook, or '' for any")
    parser.add_argument("--source-codec", help="only items whose source has this codec (e.g. flac)")
    parser.add_argument("--item", action="append", default=[], help="play this item id (repeatable)")
    parser.add_argument("--shared", type=int,
                        help="all players share the first K items (default: a distinct item per player)")
    parser.add_argument("--warm", action="store_true",
                        help="fetch every segment of the items in play first, to measure the cache")
    parser.add_argument("--metrics-url", action="append", default=[],
                        help="a server behind --url whose /metrics counters the report gives for the "
                             "measured run, warm-up excluded (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request fails")
    parser.add_argument("--server-pid", type=int, help="server process for CPU/RSS (default: found by port)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def read_keys(args: argparse.Namespace) -> tuple[str, ...]:
    keys = [k.strip() for k in args.key if k.strip()]
    if args.keys_file is not None:
        keys += [line.strip() for line in args.keys_file.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    if not keys and os.environ.get(KEY_ENV):
        keys.append(os.environ[KEY_ENV].strip())
    return tuple(keys)


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    if not 0 < args.speed <= 100:
        raise BenchError("--speed must be in (0, 100]")
    if args.buffer < 1:
        raise BenchError("--buffer must be ≥ 1")
    player = PlayerProfile(
        speed=args.speed, buffer=args.buffer, start_buffer=max(0.0, args.start_buffer),
        heartbeat_seconds=args.heartbeat,
        seeks_per_minute=max(0.0, args.seeks_per_minute), profile=args.profile or None,
        codecs=tuple(c.strip() for c in args.codecs.split(",") if c.strip()),
        max_bitrate=args.max_bitrate, timeout=args.timeout,
    )
    return LoadConfig(
        url=args.url.rstrip("/") + "/", keys=read_keys(args), listeners=args.listeners,
        duration=args.duration, player=player, seed=args.seed, ramp=args.ramp,
        item_type=args.item_type or None, source_codec=args.source_codec, item_ids=tuple(args.item),
        shared=args.shared, warm=args.warm, server_pid=args.server_pid, show_progress=not args.quiet,
        metrics_urls=tuple(u.rstrip("/") + "/" for u in args.metrics_url),
    )


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        report = run(config, log=lambda message: print(message, file=sys.stderr, flush=True))
    except (BenchError, OSError) as exc:
        print(f"revenge bench: {exc}", file=sys.stderr)
        return 2
    print(format_table(report), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if report["verdict"]["ok"] else 1
