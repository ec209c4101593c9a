"""Library scan throughput and idle server memory.

Generates N real audio files (default 1000: FLAC, MP3, AAC/M4A, Opus, WAV; 1–3 s each, every file
encoded from its own signal and tags — no copies), then measures:

- cold scan: a fresh catalog, every file probed (median of --repeats runs, each on a new catalog);
- incremental rescan: nothing changed, nothing probed (median of --repeats runs);
- rescan after 1 % of the files changed;
- `revenge serve` on a fresh data dir: peak RSS while its startup scan runs, and RSS once idle.

The OS page cache is warm for every run (the files were just written): "cold" means a cold catalog.

    .venv/bin/python benchmarks/bench_scan.py [--files 1000] [--repeats 3] [--out bench-results/scan.json]
"""

from __future__ import annotations

import argparse
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

from revenge.config import load_settings  # noqa: E402
from revenge.library.catalog import Catalog  # noqa: E402
from revenge.library.scan import ScanReport, ScanStatus, scan_library  # noqa: E402
from tests.mediagen import write_audio  # noqa: E402

FORMATS = [(".mp3", 30), (".flac", 25), (".m4a", 20), (".opus", 15), (".wav", 10)]
KINDS = ("sine", "music", "noise")


def _format_for(rng: random.Random) -> str:
    return rng.choices([f for f, _ in FORMATS], weights=[w for _, w in FORMATS])[0]


def _audio(path: Path, rng: random.Random, tags: dict[str, str]) -> None:
    ext = path.suffix
    rate = 48_000 if ext == ".opus" else rng.choice((44_100, 48_000))
    write_audio(path, seconds=rng.uniform(1.0, 3.0), rate=rate, channels=rng.choice((1, 2)),
                kind=rng.choice(KINDS), freq=rng.uniform(110, 3000), tags=tags)


def generate(base: Path, files: int, seed: int = 1) -> dict[str, int]:
    """Music (90 %), podcasts (5 %) and audiobook folders of 5 files (5 %) under ``base``."""
    rng = random.Random(seed)
    counts = {"music": 0, "podcasts": 0, "audiobooks": 0}
    n_books = max(1, files // 100)  # 5 files each → 5 %
    n_podcasts = max(1, files // 20)
    n_music = files - n_books * 5 - n_podcasts
    for i in range(n_music):
        artist, album = f"Artist {i // 60:03d}", f"Album {i // 12:04d}"
        ext = _format_for(rng)
        path = base / "music" / artist / album / f"{i % 12 + 1:02d} Track {i}{ext}"
        _audio(path, rng, {"title": f"Track {i}", "artist": artist, "album": album,
                           "track": f"{i % 12 + 1}/12", "genre": rng.choice(("Rock", "Jazz", "Folk"))})
        counts["music"] += 1
    for i in range(n_podcasts):
        path = base / "podcasts" / f"Show {i % 7}" / f"Episode {i}.mp3"
        _audio(path, rng, {"title": f"Episode {i}", "artist": f"Host {i % 7}"})
        counts["podcasts"] += 1
    for b in range(n_books):
        for part in range(1, 6):
            path = base / "audiobooks" / f"Author {b % 5}" / f"Book {b}" / f"Part {part}.mp3"
            _audio(path, rng, {"title": f"Part {part}", "album": f"Book {b}", "artist": f"Author {b % 5}"})
            counts["audiobooks"] += 1
    return counts


def _settings(base: Path, data_dir: Path) -> Any:
    return load_settings(None, env={}, data_dir=data_dir, library=(base / "music",),
                         podcasts=(base / "podcasts",), audiobooks=(base / "audiobooks",))


def _scan(base: Path, data_dir: Path) -> tuple[float, ScanReport]:
    data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(data_dir / "catalog.db")
    try:
        started = time.perf_counter()
        report = scan_library(_settings(base, data_dir), catalog, ScanStatus())
        return time.perf_counter() - started, report
    finally:
        catalog.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def server_memory(base: Path, data_dir: Path, timeout: float = 600.0) -> dict[str, float]:
    """Start `revenge serve` on a fresh data dir; wait for its startup scan; measure RSS."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update(REVENGE_PODCASTS=str(base / "podcasts"), REVENGE_AUDIOBOOKS=str(base / "audiobooks"),
               REVENGE_LOG_LEVEL="warning")
    proc = subprocess.Popen(
        [sys.executable, "-m", "revenge", "serve", "--data-dir", str(data_dir), "--port", str(port),
         str(base / "music")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        scan: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                scan = httpx.get(url, timeout=5).json()["scan"]
                if not scan["running"] and scan["finished_at"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("server scan did not finish")
        scan_seconds = time.monotonic() - started
        time.sleep(2.0)  # let the scan thread's garbage go
        return {
            "idle_rss_mib": _proc_kib(proc.pid, "VmRSS") / 1024,
            "peak_rss_mib": _proc_kib(proc.pid, "VmHWM") / 1024,
            "startup_and_scan_seconds": scan_seconds,
            "files_seen": scan["files_seen"],
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def empty_server_memory(tmp: Path) -> float:
    """RSS of an idle server with an empty library: the baseline the library adds to."""
    empty = tmp / "empty-lib"
    for sub in ("music", "podcasts", "audiobooks"):
        (empty / sub).mkdir(parents=True, exist_ok=True)
    return server_memory(empty, tmp / "data-empty")["idle_rss_mib"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--media-dir", type=Path, help="reuse generated files here (made if missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "scan.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="revenge-bench-scan-"))
    try:
        media = args.media_dir or tmp / "media"
        marker = media / f".generated-{args.files}"
        started = time.perf_counter()
        if not marker.exists():
            shutil.rmtree(media, ignore_errors=True)
            generate(media, args.files)
            marker.touch()
        generation_seconds = time.perf_counter() - started
        size_mib = sum(p.stat().st_size for p in media.rglob("*") if p.is_file()) / 2**20

        cold: list[float] = []
        warm: list[float] = []
        report: ScanReport | None = None
        for r in range(args.repeats):
            data = tmp / f"data-{r}"
            seconds, report = _scan(media, data)
            assert report.probed == args.files and report.failed == 0, report.summary()
            cold.append(seconds)
        assert report is not None
        for _ in range(args.repeats):
            seconds, again = _scan(media, tmp / "data-0")
            assert again.probed == 0 and again.unchanged == args.files, again.summary()
            warm.append(seconds)
        # 1 % of the files changed (re-encoded in place): only they are probed again.
        rng = random.Random(7)
        music = sorted((media / "music").rglob("*.*"))
        changed = rng.sample(music, max(1, args.files // 100))
        for path in changed:
            _audio(path, rng, {"title": "changed"})
        changed_seconds, changed_report = _scan(media, tmp / "data-0")
        assert changed_report.probed == len(changed), changed_report.summary()

        empty_rss = empty_server_memory(tmp)
        server = server_memory(media, tmp / "data-server")

        cold_median, warm_median = statistics.median(cold), statistics.median(warm)
        result = {
            "files": args.files,
            "media_mib": round(size_mib, 1),
            "generation_seconds": round(generation_seconds, 2),
            "cold_scan_seconds": [round(s, 3) for s in cold],
            "cold_scan_median_seconds": round(cold_median, 3),
            "cold_files_per_second": round(args.files / cold_median, 1),
            "rescan_seconds": [round(s, 3) for s in warm],
            "rescan_median_seconds": round(warm_median, 3),
            "rescan_files_per_second": round(args.files / warm_median, 1),
            "rescan_speedup": round(cold_median / warm_median, 1),
            "changed_files": len(changed),
            "changed_rescan_seconds": round(changed_seconds, 3),
            "items": report.items_added,
            "server_idle_rss_mib_empty_library": round(empty_rss, 1),
            "server_idle_rss_mib": round(server["idle_rss_mib"], 1),
            "server_peak_rss_mib": round(server["peak_rss_mib"], 1),
            "server_startup_and_scan_seconds": round(server["startup_and_scan_seconds"], 2),
            "cpus": os.cpu_count(),
        }
        rows = [
            ("files generated (MiB)", f"{args.files} ({size_mib:.1f} MiB, {generation_seconds:.1f} s)"),
            ("items", f"{report.items_added}"),
            ("cold scan, median", f"{cold_median:.2f} s = {args.files / cold_median:,.0f} files/s"),
            ("incremental rescan, median", f"{warm_median:.3f} s = {args.files / warm_median:,.0f} files/s"),
            ("rescan : cold speed", f"{cold_median / warm_median:.1f}x"),
            (f"rescan, {len(changed)} files changed", f"{changed_seconds:.3f} s"),
            ("idle server RSS, empty library", f"{empty_rss:.1f} MiB"),
            (f"idle server RSS, {args.files} files", f"{server['idle_rss_mib']:.1f} MiB"),
            ("server peak RSS during scan", f"{server['peak_rss_mib']:.1f} MiB"),
        ]
        width = max(len(k) for k, _ in rows)
        print(f"bench_scan ({os.cpu_count()} CPUs, repeats={args.repeats})")
        for key, value in rows:
            print(f"  {key:<{width}}  {value}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(f"  written: {args.out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
