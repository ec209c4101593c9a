"""A whole listen over HLS vs one continuous ffmpeg per listener, side by side (medians; figures, not
assertions). Issue 18's scenario.

For each source (a 180 s FLAC at 44.1 kHz stereo, a 180 s MP3, a 180 s Opus at 48 kHz, a 60-minute
FLAC audiobook; ``--quick``: a 60 s FLAC), a never-played item, as a player does on a live
``revenge serve`` child process: session start → multivariant → the aac-128 media playlist → init →
every segment in order, as fast as they come. Against it, for the same file, the incumbents' model:
``ffmpeg -i src -c:a aac -b:a 128k -aac_coder twoloop -f hls -hls_segment_type fmp4 -hls_time 6``.
Runs alternate between the two, each on a fresh copy of the source (a new item: nothing cached).

* CPU seconds: the server process' (/proc, all threads, from before the session to after the last
  segment) vs the ffmpeg child's (wait4). Goal: ours ≤ 1.05×.
* Time to first audio: session start → segment 0 received, vs ffmpeg started → its playlist lists
  its first segment (the file is complete then). Goal: ours ≤ 0.5×.

    .venv/bin/python benchmarks/bench_listen.py [--quick] [--runs N] [--out FILE]
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
from benchmarks.bench_stream import process_cpu, ratio  # noqa: E402
from benchmarks.results import write_json  # noqa: E402
from revenge.library.ids import item_id  # noqa: E402
from revenge.loadtest.playlist import choose_variant, parse_media, parse_multivariant  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402

PROFILE = "aac-128"
FFMPEG_HLS = ("-c:a", "aac", "-b:a", "128k", "-aac_coder", "twoloop", "-f", "hls",
              "-hls_segment_type", "fmp4", "-hls_time", "6", "-hls_list_size", "0")
# name → (file suffix, seconds, rate, item type); the book is one long file
SOURCES: dict[str, tuple[str, float, int, str]] = {
    "flac_180s": (".flac", 180.0, 44100, "track"),
    "mp3_180s": (".mp3", 180.0, 44100, "track"),
    "opus48k_180s": (".opus", 180.0, 48000, "track"),
    "book_60min": (".flac", 3600.0, 44100, "audiobook"),
}
QUICK_SOURCES = {"flac_60s": (".flac", 60.0, 44100, "track")}


def ours_listen(client: httpx.Client, base: str, key: str, item: str, pid: int) -> tuple[float, float]:
    """(seconds to first audio, server CPU seconds) of one whole listen."""
    auth = {"Authorization": f"Bearer {key}"}
    before = process_cpu(pid)
    started = time.perf_counter()
    session = client.post(base + "api/v1/playback/sessions", headers=auth, json={
        "item_id": item, "device_id": "bench", "capabilities": {"codecs": ["aac"], "hls": True}})
    session.raise_for_status()
    body = session.json()
    url = str(httpx.URL(base).join(body["url"]))
    variant = choose_variant(parse_multivariant(client.get(url).raise_for_status().text, url), PROFILE)
    media = parse_media(client.get(variant.uri).raise_for_status().text, variant.uri)
    if media.init_uri:
        client.get(media.init_uri).raise_for_status()
    first_audio = 0.0
    for n, segment in enumerate(media.segments):
        client.get(segment.uri).raise_for_status()
        if n == 0:
            first_audio = time.perf_counter() - started
    client.delete(base + f"api/v1/playback/sessions/{body['session_id']}", headers=auth)
    time.sleep(0.05)  # the session's stop: part of the listen's cost
    return first_audio, process_cpu(pid) - before


def ffmpeg_listen(src: Path, out: Path) -> tuple[float, float]:
    """(seconds to its first complete segment, CPU seconds) of one continuous ffmpeg HLS encode."""
    out.mkdir(parents=True)
    playlist = out / "index.m3u8"
    started = time.perf_counter()
    proc = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), *FFMPEG_HLS,
                             "-hls_segment_filename", str(out / "seg%d.m4s"), str(playlist)])
    first_audio = None
    while True:
        done, status, usage = os.wait4(proc.pid, os.WNOHANG if first_audio is None else 0)
        if done:
            break
        try:
            if "#EXTINF" in playlist.read_text():
                first_audio = time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.002)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed on {src}")
    if first_audio is None:
        first_audio = time.perf_counter() - started
    shutil.rmtree(out)
    return first_audio, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 60 s FLAC, 3 runs (CI guard)")
    parser.add_argument("--runs", type=int, help="runs per side and source (default 5, quick 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "listen.json")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    sources = QUICK_SOURCES if args.quick else SOURCES
    results: dict[str, Any] = {"cpus": os.cpu_count(), "quick": args.quick, "profile": PROFILE, "runs": runs,
                               "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    work = Path(tempfile.mkdtemp(prefix="bench-listen-"))
    try:
        music, books, data = work / "music", work / "books", work / "data"
        originals = {}
        for name, (suffix, seconds, rate, _) in sources.items():
            originals[name] = write_audio(work / "sources" / f"{name}{suffix}", seconds=seconds, rate=rate,
                                          channels=2, kind="music").path
        # Every run a file of its own (a new item, nothing of it cached), made before the server starts.
        copies: dict[str, list[tuple[str, str]]] = {}
        for name, (suffix, _, _, kind) in sources.items():
            folder = books if kind == "audiobook" else music
            copies[name] = []
            for n in range(runs + 1):
                relative = f"{name}-{n}{suffix}"
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                os.link(originals[name], folder / relative)  # a new path: a new item and fingerprint
                copies[name].append((item_id(kind, relative), relative))  # type: ignore[arg-type]
        (key,) = make_keys(data, 1)
        env = {"REVENGE_AUDIOBOOKS": str(books)} if any(s[3] == "audiobook" for s in sources.values()) else {}
        books.mkdir(exist_ok=True)
        with serve(music, data, env) as (url, pid), httpx.Client(timeout=600) as client:
            for name, (_, seconds, _, _) in sources.items():
                (warm_item, _), *measured = copies[name]
                ours_listen(client, url, key, warm_item, pid)  # imports, the page cache, the encode pool
                ffmpeg_listen(originals[name], work / "hls-warm")
                ours, theirs = [], []
                for n, (item, _) in enumerate(measured):
                    ours.append(ours_listen(client, url, key, item, pid))
                    theirs.append(ffmpeg_listen(originals[name], work / f"hls-{n}"))
                o_first, o_cpu = zip(*ours, strict=True)
                t_first, t_cpu = zip(*theirs, strict=True)
                results[name] = {
                    "audio_seconds": seconds,
                    "cpu_s": {"ours_p50": round(statistics.median(o_cpu), 3),
                              "ffmpeg_p50": round(statistics.median(t_cpu), 3),
                              "ratio": ratio(list(o_cpu), list(t_cpu)), "goal": "<= 1.05"},
                    "first_audio_ms": {"ours_p50": round(statistics.median(o_first) * 1000, 1),
                                       "ffmpeg_p50": round(statistics.median(t_first) * 1000, 1),
                                       "ratio": ratio(list(o_first), list(t_first)), "goal": "<= 0.5"},
                }
                r = results[name]
                print(f"  {name}: CPU {r['cpu_s']}, first audio {r['first_audio_ms']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"bench_listen ({results['cpus']} CPUs, {PROFILE}, {runs} runs, medians; load "
          f"{results['load_average_start']} → {results['load_average_end']})")
    names = [n for n in results if isinstance(results[n], dict)]
    for name in names:
        r = results[name]
        print(f"  {name:<14} CPU {r['cpu_s']['ours_p50']:>7g} / {r['cpu_s']['ffmpeg_p50']:<7g} s "
              f"{r['cpu_s']['ratio']:>6.3f}   first audio {r['first_audio_ms']['ours_p50']:>7g} / "
              f"{r['first_audio_ms']['ffmpeg_p50']:<7g} ms {r['first_audio_ms']['ratio']:>6.3f}")
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
