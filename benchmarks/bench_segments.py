"""HLS segment latency and throughput, side by side in one run (medians; figures, not assertions).

1. Cold segment over HTTP (real uvicorn, prefetch off, each request a segment never encoded before,
   fetched in order as a player does: the server continues its suspended encoder runs) vs the same
   spans encoded in-process the same way (``EncoderRuns``, no HTTP, no engine). Goal ≤ 1.15.
2. The incumbents' model: ``ffmpeg -ss … -t … -i src -c:a aac -b:a 128k -aac_coder twoloop -f mp4``
   as a subprocess per segment, same spans, same encoder settings. Goal: ours over HTTP ≥ 1.4× faster.
   Also ours with one fresh encoder per segment (``encoder_run_segments = 1``), in-process, and a
   cold request in the middle of a run (a seek there: the run's earlier segments are encoded too).
3. ``aac_coder``: ``fast`` vs ``twoloop`` (the default), in-process, one encoder per segment.
4. A segment 90 % into a 60-minute FLAC vs at 0 % (cold, over HTTP): p50, p95, p95 ratio (goal ≤ 1.2).
   With ``--mp3`` also for a 60-minute MP3 (FFmpeg's exact MP3 seek reads frame headers from the start).
5. A cached segment: p50 latency and requests/s, vs a bare Starlette endpoint returning the same bytes
   from a dict (same uvicorn setup, same client).

Sources are generated (FLAC, 44.1 kHz stereo, "music"); aac-128 throughout. Servers run in threads of
this process and the client shares the process: the HTTP figures include that (equally for both
sides of each comparison).

    .venv/bin/python benchmarks/bench_segments.py [--quick] [--mp3] [--out bench-results/segments.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_json  # noqa: E402
from revenge.config import Settings  # noqa: E402
from revenge.hls.profiles import PROFILES  # noqa: E402
from revenge.hls.rendition import prepare_rendition  # noqa: E402
from revenge.hls.runs import EncoderRuns  # noqa: E402
from revenge.hls.transcode import encode_segment  # noqa: E402
from revenge.http_guard import HttpLimits  # noqa: E402
from revenge.library.assemble import build_item  # noqa: E402
from revenge.library.ids import item_id  # noqa: E402
from revenge.library.probe import probe_file  # noqa: E402
from revenge.server import uvicorn_config  # noqa: E402
from tests.live import add_user, live_server, test_settings  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402

PROFILE = "aac-128"


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def p95_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000, 2)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def ffmpeg_segment(src: Path, start_s: float, seconds: float) -> bytes:
    run = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.6f}", "-t", f"{seconds:.6f}", "-i", str(src),
         "-c:a", "aac", "-b:a", "128k", "-aac_coder", "twoloop", "-ar", "44100", "-ac", "2",
         "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1"],
        capture_output=True, check=True,
    )
    return run.stdout


@contextlib.contextmanager
def dict_server(payload: bytes) -> Iterator[str]:
    """A bare Starlette endpoint serving ``payload`` from a dict, under the same uvicorn setup."""
    store = {"segment": payload}

    async def endpoint(request: Request) -> Response:
        return Response(store["segment"], media_type="audio/mp4")

    app = Starlette(routes=[Route("/seg.m4s", endpoint)])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # The server's own uvicorn setup (HTTP guard included), as the live server under test has.
    config = uvicorn_config(app, HttpLimits(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/seg.m4s"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def latency_and_rate(url: str, headers: dict[str, str], requests: int,
                     concurrency: int) -> tuple[float, float]:
    """(p50 seconds of sequential keep-alive requests, requests/s with ``concurrency`` clients)."""
    with httpx.Client(headers=headers, timeout=60) as client:
        for _ in range(20):
            client.get(url)
        samples = [timed(lambda: client.get(url).raise_for_status()) for _ in range(requests)]

    async def burst() -> float:
        async with httpx.AsyncClient(headers=headers, timeout=60,
                                     limits=httpx.Limits(max_connections=concurrency)) as client:
            per_worker = max(1, requests // concurrency)

            async def worker() -> None:
                for _ in range(per_worker):
                    (await client.get(url)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return per_worker * concurrency / (time.perf_counter() - started)

    return statistics.median(samples), asyncio.run(burst())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples, a 5-minute 'long' file (CI guard)")
    parser.add_argument("--mp3", action="store_true", help="also the 90 %% vs 0 %% case for a 60-minute MP3")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "segments.json")
    args = parser.parse_args()
    segments = 6 if args.quick else 16
    long_minutes = 5 if args.quick else 60
    cached_requests = 200 if args.quick else 1000
    results: dict[str, Any] = {"cpus": os.cpu_count(), "quick": args.quick, "profile": PROFILE}

    work = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    try:
        music = work / "music"
        short = write_audio(music / "short.flac", seconds=6.0 * (2 * segments + 2), rate=44100, channels=2,
                            kind="music")
        print(f"generating a {long_minutes}-minute FLAC…", flush=True)
        write_audio(music / "long.flac", seconds=60.0 * long_minutes, rate=44100, channels=2, kind="music")
        long_mp3 = None
        if args.mp3:
            print(f"generating a {long_minutes}-minute MP3…", flush=True)
            long_mp3 = write_audio(music / "long.mp3", seconds=60.0 * long_minutes, rate=44100, channels=2,
                                   kind="music")
        data = work / "data"
        key = add_user(data, "bench")
        auth = {"Authorization": f"Bearer {key}"}
        profile = PROFILES[PROFILE]

        # In-process: encode_segment on the same renditions the server builds. Every comparison is
        # interleaved segment by segment, so load from elsewhere on the machine hits both sides alike.
        item = build_item("track", "short.flac", [probe_file(short.path)], folder_book=False)
        run_segments = Settings.encoder_run_segments  # the server's default
        runs = prepare_rendition(item, profile, 6.0, "twoloop", run_segments)
        twoloop = prepare_rendition(item, profile, 6.0, "twoloop", 1)
        fast = prepare_rendition(item, profile, 6.0, "fast", 1)
        span = list(range(1, 1 + segments))  # segment 0 has no pre-roll: cheaper than the rest
        encode_segment(twoloop, 0)  # warm imports and the page cache
        listener = EncoderRuns(8, Settings.encoder_idle_seconds)
        listener.encode(runs, 0)  # as the server after the client's segment 0 below
        in_process: list[float] = []
        in_process_fresh: list[float] = []
        in_process_fast: list[float] = []
        mid_run: list[float] = []
        run_start: list[float] = []
        ffmpeg_times: list[float] = []
        cold_http: list[float] = []
        at_0: list[float] = []
        at_90: list[float] = []
        mp3_0: list[float] = []
        mp3_90: list[float] = []

        def get(client: httpx.Client, url: str) -> float:
            return timed(lambda: client.get(url).raise_for_status())

        settings = test_settings(data, library=(music,), prefetch_segments=0)
        with live_server(settings) as live, httpx.Client(headers=auth, timeout=120) as client:
            stream = f"{live.url}/api/v1/stream"
            base = f"{stream}/{item_id('track', 'short.flac')}/{PROFILE}"
            client.get(f"{base}/index.m3u8").raise_for_status()  # rendition prepared
            client.get(f"{base}/segment0.m4s").raise_for_status()
            for i in span:
                seg = twoloop.plan.segment(i)
                in_process.append(timed(lambda i=i: listener.encode(runs, i)))
                cold_http.append(get(client, f"{base}/segment{i}.m4s"))
                ffmpeg_times.append(timed(lambda seg=seg: ffmpeg_segment(short.path, seg.start / 44100,
                                                                         seg.samples / 44100)))
                in_process_fresh.append(timed(lambda i=i: encode_segment(twoloop, i)))
                in_process_fast.append(timed(lambda i=i: encode_segment(fast, i)))

            def head_and_tail(rel: str, into_0: list[float], into_90: list[float]) -> None:
                long_base = f"{stream}/{item_id('track', rel)}/{PROFILE}"
                count = client.get(f"{long_base}/index.m3u8").text.count("#EXTINF")
                tail_start = int(count * 0.9)
                for k in range(segments):  # cold every time, alternating 0 % and 90 %
                    into_0.append(get(client, f"{long_base}/segment{1 + k}.m4s"))
                    into_90.append(get(client, f"{long_base}/segment{tail_start + k}.m4s"))

            head_and_tail("long.flac", at_0, at_90)
            # Seeks: a cold request at the start of a run vs at its last segment (the worst case).
            long_base = f"{stream}/{item_id('track', 'long.flac')}/{PROFILE}"
            count = client.get(f"{long_base}/index.m3u8").text.count("#EXTINF")
            # Runs the 0 % and 90 % requests above left untouched (they used the first two and the
            # ones from 90 % on), two per sample: one entered at its start, the next at its end.
            free_runs = range(2, int(count * 0.9) // run_segments - 1)
            for k in range(min(segments, len(free_runs) // 2)):
                start = free_runs[2 * k] * run_segments
                run_start.append(get(client, f"{long_base}/segment{start}.m4s"))
                mid_run.append(get(client, f"{long_base}/segment{start + 2 * run_segments - 1}.m4s"))
            if long_mp3 is not None:
                head_and_tail("long.mp3", mp3_0, mp3_90)
            cached_url = f"{base}/segment1.m4s"
            payload = client.get(cached_url).content
            ours_p50, ours_rate = latency_and_rate(cached_url, auth, cached_requests, 8)
        with dict_server(payload) as url:
            dict_p50, dict_rate = latency_and_rate(url, {}, cached_requests, 8)

        results["cold_segment_ms"] = {
            "http_p50": median_ms(cold_http), "in_process_p50": median_ms(in_process),
            "ratio_http_over_in_process":
                round(statistics.median(cold_http) / statistics.median(in_process), 3),
            "goal": "<= 1.15",
        }
        results["vs_ffmpeg_subprocess_ms"] = {
            "ffmpeg_p50": median_ms(ffmpeg_times), "ours_http_p50": median_ms(cold_http),
            "speedup": round(statistics.median(ffmpeg_times) / statistics.median(cold_http), 3),
            "goal": ">= 1.4",
        }
        results["encoder_runs_ms"] = {
            "run_segments": run_segments,
            "one_encoder_per_segment_in_process_p50": median_ms(in_process_fresh),
            "continued_runs_in_process_p50": median_ms(in_process),
            "ffmpeg_over_one_encoder_per_segment":
                round(statistics.median(ffmpeg_times) / statistics.median(in_process_fresh), 3),
            "cold_at_run_start_http_p50": median_ms(run_start),
            "cold_at_last_of_run_http_p50": median_ms(mid_run),
        }
        results["aac_coder_ms"] = {
            "twoloop_p50": median_ms(in_process_fresh), "fast_p50": median_ms(in_process_fast),
            "fast_speedup":
                round(statistics.median(in_process_fresh) / statistics.median(in_process_fast), 3),
        }
        results["seek_position_ms"] = {
            "file_minutes": long_minutes, "at_0_p50": median_ms(at_0), "at_0_p95": p95_ms(at_0),
            "at_90_p50": median_ms(at_90), "at_90_p95": p95_ms(at_90),
            "p95_ratio_90_over_0": round(p95_ms(at_90) / p95_ms(at_0), 3), "goal": "<= 1.2",
        }
        if mp3_0:
            results["seek_position_mp3_ms"] = {
                "at_0_p50": median_ms(mp3_0), "at_0_p95": p95_ms(mp3_0),
                "at_90_p50": median_ms(mp3_90), "at_90_p95": p95_ms(mp3_90),
                "p95_ratio_90_over_0": round(p95_ms(mp3_90) / p95_ms(mp3_0), 3),
            }
        results["cached_segment"] = {
            "bytes": len(payload),
            "ours_p50_ms": round(ours_p50 * 1000, 3), "dict_p50_ms": round(dict_p50 * 1000, 3),
            "ours_req_per_s": round(ours_rate), "dict_req_per_s": round(dict_rate),
            "throughput_ratio_ours_over_dict": round(ours_rate / dict_rate, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"bench_segments ({results['cpus']} CPUs{', quick' if args.quick else ''}, {PROFILE}, medians)")
    for section, values in results.items():
        if isinstance(values, dict):
            print(f"  {section}")
            for key_name, value in values.items():
                print(f"    {key_name:<34} {value}")
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
