"""``revenge bench``: the command line of the load simulator.

    revenge bench --url http://127.0.0.1:7700 --key KEY -n 100 --duration 60 --speed 1 --seed 1 \\
        [--json result.json]

Exit status: 0 when the run had no stall and no error, 1 when it had some, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from revenge.loadtest.arguments import KEY_ENV
from revenge.loadtest.listener import PlayerProfile
from revenge.loadtest.report import format_table
from revenge.loadtest.run import BenchError, LoadConfig, run


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
