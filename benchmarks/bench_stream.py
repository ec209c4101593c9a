"""Subsonic ``stream`` transcodes vs the ffmpeg CLI, side by side in one run (medians; figures, not
assertions).

For each format (mp3 192k, opus 128k, aac 192k: our defaults) the same FLAC source (44.1 kHz stereo,
"music") is streamed over HTTP from a live ``revenge serve`` in a child process, and piped out of
``ffmpeg -i src -c:a ENCODER -b:a RATE -f FORMAT pipe:1`` with the same encoder settings; runs
alternate between the two so load from elsewhere on the machine hits both alike.

* time to first byte: request sent → first body byte; ffmpeg started → first byte on its stdout.
  Goal (issue 15): ours ≤ 0.5× ffmpeg's.
* CPU seconds: the server process' (utime + stime from /proc, all its threads, read before the
  request and after the body ends) vs the ffmpeg child's (wait4). Goal: ours ≤ 1.05× ffmpeg's.

The load average is recorded at the start and the end: the box may be shared.

    .venv/bin/python benchmarks/bench_stream.py [--quick] [--seconds S] [--runs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_listeners import make_keys, serve  # noqa: E402
from benchmarks.bench_segments import median_ms  # noqa: E402
from benchmarks.results import write_json  # noqa: E402
from revenge.library.ids import item_id  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402

# format → (kb/s, ffmpeg's arguments for the same encoder and settings as ours)
FORMATS: dict[str, tuple[int, tuple[str, ...]]] = {
    "mp3": (192, ("-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3")),
    "opus": (128, ("-c:a", "libopus", "-b:a", "128k", "-vbr", "constrained", "-f", "ogg")),
    "aac": (192, ("-c:a", "aac", "-b:a", "192k", "-f", "adts")),
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def ffmpeg_run(src: Path, args: tuple[str, ...]) -> tuple[float, float, int]:
    """(seconds to the first byte, CPU seconds, bytes) of one ffmpeg transcode to a pipe."""
    started = time.perf_counter()
    proc = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), *args, "pipe:1"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 1 << 16)
    ttfb = time.perf_counter() - started
    size = len(first) + len(proc.stdout.read())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not first:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed ({proc.returncode})")
    return ttfb, usage.ru_utime + usage.ru_stime, size


def ours_run(client: httpx.Client, url: str, pid: int) -> tuple[float, float, int]:
    """(seconds to the first byte, server CPU seconds, bytes) of one stream over HTTP."""
    before = process_cpu(pid)
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        response.raise_for_status()
        chunks = response.iter_raw()
        first = next(chunks)
        ttfb = time.perf_counter() - started
        size = len(first) + sum(len(c) for c in chunks)
    time.sleep(0.05)  # the session's stop, after the last byte: part of the stream's cost
    return ttfb, process_cpu(pid) - before, size


def ratio(ours: list[float], theirs: list[float]) -> float:
    return round(statistics.median(ours) / statistics.median(theirs), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s source, 3 runs (CI guard)")
    parser.add_argument("--seconds", type=float, help="source length (default 120, quick 20)")
    parser.add_argument("--runs", type=int, help="runs per side and format (default 7, quick 3)")
    parser.add_argument("--formats", default="mp3,opus,aac")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "stream.json")
    args = parser.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 120.0)
    runs = args.runs or (3 if args.quick else 7)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "quick": args.quick, "source_seconds": seconds,
                               "runs": runs, "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    try:
        music, data = work / "music", work / "data"
        src = write_audio(music / "track.flac", seconds=seconds, rate=44100, channels=2, kind="music").path
        (key,) = make_keys(data, 1)
        with serve(music, data, {}) as (url, pid), httpx.Client(timeout=600) as client:
            base = (f"{url}rest/stream?v=1.16.1&c=bench&apiKey={key}"
                    f"&id={item_id('track', 'track.flac')}")
            for fmt in args.formats.split(","):
                kbps, ffmpeg_args = FORMATS[fmt]
                stream_url = f"{base}&format={fmt}&maxBitRate={kbps}"
                ours_run(client, stream_url, pid)  # warm: imports, the page cache, the encode pool
                ffmpeg_run(src, ffmpeg_args)
                ours: list[tuple[float, float, int]] = []
                theirs: list[tuple[float, float, int]] = []
                for _ in range(runs):
                    ours.append(ours_run(client, stream_url, pid))
                    theirs.append(ffmpeg_run(src, ffmpeg_args))
                o_ttfb, o_cpu, o_size = zip(*ours, strict=True)
                t_ttfb, t_cpu, t_size = zip(*theirs, strict=True)
                results[fmt] = {
                    "kbps": kbps,
                    "ttfb_ms": {"ours_p50": median_ms(list(o_ttfb)), "ffmpeg_p50": median_ms(list(t_ttfb)),
                                "ratio": ratio(list(o_ttfb), list(t_ttfb)), "goal": "<= 0.5"},
                    "cpu_s": {"ours_p50": round(statistics.median(o_cpu), 3),
                              "ffmpeg_p50": round(statistics.median(t_cpu), 3),
                              "ours_per_audio_second_ms": round(statistics.median(o_cpu) / seconds * 1000, 3),
                              "ratio": ratio(list(o_cpu), list(t_cpu)), "goal": "<= 1.05"},
                    "bytes": {"ours": int(statistics.median(o_size)),
                              "ffmpeg": int(statistics.median(t_size))},
                }
                print(f"  {fmt}: TTFB {results[fmt]['ttfb_ms']}, CPU {results[fmt]['cpu_s']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    print(f"bench_stream ({results['cpus']} CPUs, {seconds:g} s source, {runs} runs, medians; load "
          f"{results['load_average_start']} → {results['load_average_end']})")
    print(f"  {'format':<8}{'TTFB ours/ffmpeg ms':<26}{'ratio':>7}   {'CPU ours/ffmpeg s':<22}{'ratio':>7}")
    for fmt in args.formats.split(","):
        r = results[fmt]
        ttfb, cpu = r["ttfb_ms"], r["cpu_s"]
        print(f"  {fmt:<8}{ttfb['ours_p50']:>9g} / {ttfb['ffmpeg_p50']:<14g}{ttfb['ratio']:>7.3f}   "
              f"{cpu['ours_p50']:>7g} / {cpu['ffmpeg_p50']:<12g}{cpu['ratio']:>7.3f}")
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
