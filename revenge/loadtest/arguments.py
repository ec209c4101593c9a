"""The arguments of ``revenge bench``, apart from the simulator (``command``), so that building the
command line of every other command does not import it."""

from __future__ import annotations

import argparse
from pathlib import Path

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
