"""Where a listen's CPU goes: a py-spy raw profile of the server, summed by stage (issue 18).

Record a whole listen (bench_listen starts the server; attach to its pid), then summarise:

    .venv/bin/py-spy record --native -r 200 -p PID -f raw -o prof.txt -d 40
    .venv/bin/python benchmarks/profile_breakdown.py prof.txt [--examples]

Samples whose leaf is a wait in libc (a lock, the GIL, a condition, epoll, a sleep) are idle and left
out: the percentages are of the samples that were on a CPU. The first matching rule names a stack.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

# A stack is idle when its leaf is in libc and it waits: the frame above the leaf says so.
_WAITS = ("PyThread_acquire_lock", "pthread_cond_timedwait", "pthread_cond_wait", "sem_wait",
          "epoll_pwait", "clock_nanosleep", "uv__io_poll", "select", "poll")

# (stage, substrings of which any marks it), in order: the first stage that matches wins.
_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rendition set-up (encoder_setup, probe)", ("encoder_setup", "source_bits")),
    ("encoder open per run", ("open_encoder",)),
    ("PyAV encode-side filter graph (cuts input into frame_size frames)",
     ("AudioCodecContext__prepare_frames_for_encode",)),
    ("encode (libavcodec)", ("SegmentRun._flush", "encode (context.c")),
    ("resample (swr, rate change)", ("_resample (revenge",)),
    ("decode-side format/layout conversion (swr)", ("_decode_into (revenge/hls/decode.py:134",)),
    ("decode (demux + decoder)", ("_frames_from", "Packet.decode", "CodecContext__decode")),
    ("decoder set-up (open, probe, seek)", ("avformat_open_input", "av_probe_input", "seek (")),
    ("Python per-frame: numpy placing/copies, gain", ("_place (", "to_ndarray", "apply_gains",
                                                       "read_timeline", "_decode_into")),
    ("Python per-frame: make_frame (numpy -> AVFrame)", ("make_frame",)),
    ("mux (fmp4, FLAC renumbering)", ("media_segment", "fmp4", "flac_frames")),
    ("Python in the encode loop (feed, collect, take, bytes(packet))", ("SegmentRun",)),
    ("playlists + BANDWIDTH", ("playlist", "declared_bandwidth", "HlsEngine.variant")),
    ("sessions / store (SQLite)", ("sqlite", "fdatasync")),
)
_REST = "HTTP, event loop, other Python"


def idle(frames: list[str]) -> bool:
    leaf = frames[-1]
    if "libc.so" not in leaf and not leaf.startswith(_WAITS):
        return False
    return any(frame.startswith(_WAITS) for frame in frames[-3:])


def stage(stack: str) -> str:
    for name, marks in _STAGES:
        if any(mark in stack for mark in marks):
            return name
    return _REST


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--examples", action="store_true", help="the heaviest leaves of each stage")
    args = parser.parse_args()
    totals: Counter[str] = Counter()
    leaves: defaultdict[str, Counter[str]] = defaultdict(Counter)
    waiting = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        if idle(frames):
            waiting += n
            continue
        name = stage(stack)
        totals[name] += n
        leaves[name][frames[-1][:80]] += n
    busy = sum(totals.values())
    print(f"{busy} samples on a CPU, {waiting} waiting (left out)\n")
    print("| stage | samples | share |\n|---|---:|---:|")
    for name, n in totals.most_common():
        print(f"| {name} | {n} | {100 * n / busy:.1f} % |")
        if args.examples:
            for leaf, m in leaves[name].most_common(3):
                print(f"|   {leaf} | {m} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
