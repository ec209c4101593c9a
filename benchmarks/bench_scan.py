"""Library scan throughput and idle server memory.

Generates N real audio files (default 1000: FLAC, MP3, AAC/M4A, Opus, WAV; 1–3 s each, every file
encoded from its own signal and tags — no copies), then measures:

- cold scan: a fresh catalog, every file probed (median of --repeats runs, each on a new catalog);
- incremental rescan: nothing changed, nothing probed (median of --repeats runs);
- rescan after 1 % of the files changed;
- `revenge serve` on a fresh data dir: peak RSS while its startup scan runs, and RSS once idle.

The OS page cache is warm for every run (the files were just written): "cold" means a cold catalog.

    .venv/bin/python benchmarks/bench_scan.py [--files 1000] [--repeats 3] [--out bench-results/scan.json]

``--tagged N`` (the library issue's figure: N = 20 000) measures a realistic tagged library instead:
N short MP3s in N / 20 albums, made from one encoded file copied and retagged with mutagen (fast: no
encode per file), full ID3 tags (album artist, track and disc with totals, year, genres, MusicBrainz
ids, ReplayGain; some multi-artist), embedded front covers on 30 % of the albums and a ``cover.jpg``
on another 20 %. It times ``revenge scan`` as a subprocess (tags, pictures, the art index) from an
empty data dir and again with nothing changed, with each run's peak RSS, and the same two scans by
Debian's ``supysonic`` (``supysonic-cli folder scan --foreground``) on the same files when it is
installed: ``--repeats`` rounds, each side by side on fresh databases; medians.

    .venv/bin/python benchmarks/bench_scan.py --tagged 20000 [--media-dir CACHE]
"""

from __future__ import annotations

import argparse
import os
import random
import re
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

from benchmarks.results import write_json  # noqa: E402
from revenge.config import load_settings  # noqa: E402
from revenge.library.catalog import Catalog  # noqa: E402
from revenge.library.scan import scan_library  # noqa: E402
from revenge.library.scan_status import ScanReport, ScanStatus  # noqa: E402
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


GENRES = ("Rock", "Jazz", "Folk", "Electronic", "Hip-Hop", "Classical", "Pop", "Metal")
TRACKS_PER_ALBUM = 20


def generate_tagged(base: Path, files: int, seed: int = 3) -> dict[str, int]:
    """``files`` tagged MP3s in ``files // TRACKS_PER_ALBUM`` album folders (see the module docstring)."""
    from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1, TPE2, TPOS, TRCK, TXXX

    from tests.artgen import picture_bytes

    rng = random.Random(seed)
    template = base / ".template.mp3"
    write_audio(template, seconds=0.5, rate=44_100, channels=1, kind="music", bit_rate=64_000)
    ID3().save(template)  # an empty ID3 header: every copy is retagged below
    raw = template.read_bytes()
    counts = {"albums": 0, "embedded_covers": 0, "folder_covers": 0}
    for a in range(files // TRACKS_PER_ALBUM):
        artist = f"Artist {a // 4:03d} {rng.choice(('Quartet', 'Band', 'Orchestra', 'Beyoncé', 'Sigur Rós'))}"
        album = f"Album {a:04d} {rng.choice(('Live', 'Sessions', 'Nights', 'Été'))}"
        year = rng.randint(1950, 2024)
        folder = base / "music" / artist / album
        folder.mkdir(parents=True, exist_ok=True)
        mb_album = f"{a:08x}-0000-4000-8000-{rng.getrandbits(48):012x}"
        genres = rng.sample(GENRES, rng.choice((1, 1, 2)))
        roll = rng.random()
        cover = picture_bytes(300, 300, (a % 255, 90, 160)) if roll < 0.5 else None
        if cover is not None and roll >= 0.3:
            (folder / "cover.jpg").write_bytes(picture_bytes(300, 300, (a % 255, 40, 40), "JPEG"))
            cover = None
            counts["folder_covers"] += 1
        elif cover is not None:
            counts["embedded_covers"] += 1
        counts["albums"] += 1
        for t in range(1, TRACKS_PER_ALBUM + 1):
            path = folder / f"{t:02d} Track {t}.mp3"
            path.write_bytes(raw)
            tags = ID3(path)
            performers = [artist] + ([f"Guest {rng.randint(1, 500)}"] if rng.random() < 0.1 else [])
            tags.add(TIT2(encoding=3, text=f"Track {t} of {a}"))
            tags.add(TPE1(encoding=3, text=performers))
            tags.add(TPE2(encoding=3, text=artist))
            tags.add(TALB(encoding=3, text=album))
            tags.add(TRCK(encoding=3, text=f"{t}/{TRACKS_PER_ALBUM}"))
            tags.add(TPOS(encoding=3, text="1/1" if t <= 10 else "2/2") if a % 5 == 0 else
                     TPOS(encoding=3, text="1/1"))
            tags.add(TDRC(encoding=3, text=str(year)))
            tags.add(TCON(encoding=3, text=genres))
            tags.add(TXXX(encoding=3, desc="MusicBrainz Album Id", text=mb_album))
            tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=f"{rng.uniform(-12, 3):.2f} dB"))
            tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_PEAK", text=f"{rng.uniform(0.5, 1):.6f}"))
            if cover is not None:
                tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=cover))
            tags.save(path)
    template.unlink()
    return counts


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``: its wall time, its peak RSS and its output. The RSS comes from GNU time's
    wait4 of a process it forked (a child forked from this benchmark would count our own memory, copied
    before its exec, in its peak)."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *command], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - started
        output = done.stdout.decode(errors="replace").strip()
        if done.returncode != 0:
            raise RuntimeError(f"{command[:4]} failed ({done.returncode}):\n{output[-3000:]}")
        peak_kib = int(Path(rss.name).read_text().split()[-1])
    scanned = re.search(r"Scanned \d+ files in ([\d.]+) s", output)  # ours: the scan's own time
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
            "scan_seconds": float(scanned.group(1)) if scanned else None,
            "output": output[-400:]}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of timed runs (seconds and the scan's own time), the highest peak RSS."""
    own = [r["scan_seconds"] for r in runs if r["scan_seconds"] is not None]
    return {"seconds": round(statistics.median(r["seconds"] for r in runs), 2),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "scan_seconds": round(statistics.median(own), 2) if own else None,
            "runs_seconds": [r["seconds"] for r in runs], "output": runs[-1]["output"]}


def tagged_library(args: argparse.Namespace) -> int:
    files = args.tagged
    tmp = Path(tempfile.mkdtemp(prefix="revenge-bench-tagged-"))
    try:
        media = args.media_dir or tmp / "media"
        marker = media / f".generated-tagged-{files}"
        started = time.perf_counter()
        counts: dict[str, Any] = {}
        if marker.exists():
            counts = orjson.loads(marker.read_bytes())
        else:
            shutil.rmtree(media, ignore_errors=True)
            counts = generate_tagged(media, files)
            marker.write_bytes(orjson.dumps(counts))
        generation_seconds = time.perf_counter() - started
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
        env["PYTHONPATH"] = str(ROOT)
        result: dict[str, Any] = {"files": files, **counts, "cpus": os.cpu_count(),
                                  "generation_seconds": round(generation_seconds, 1), "rounds": args.repeats}
        runs: dict[str, list[dict[str, Any]]] = {}
        supysonic = shutil.which("supysonic-cli") is not None
        sup_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Rounds side by side: each a fresh data dir for us and a fresh database for supysonic, so a
        # slower stretch of a shared machine lands on both; medians of the rounds.
        for round_ in range(args.repeats):
            ours = [sys.executable, "-m", "revenge", "scan", "--data-dir", str(tmp / f"data-{round_}"),
                    str(media / "music")]
            runs.setdefault("revenge_full_scan", []).append(_timed(ours, ROOT, env))
            runs.setdefault("revenge_rescan", []).append(_timed(ours, ROOT, env))
            if not supysonic:
                continue
            home = tmp / f"supysonic-{round_}"
            home.mkdir()
            # supysonic reads ./supysonic.conf among its config paths: a private database and cache.
            (home / "supysonic.conf").write_text(
                f"[base]\ndatabase_uri = sqlite:///{home}/supysonic.db\n"
                f"[webapp]\ncache_dir = {home}/cache\nlog_level = WARNING\n"
                f"[daemon]\nsocket = {home}/daemon.sock\n")
            theirs = ["supysonic-cli", "folder", "scan", "--foreground", "lib"]
            _timed(["supysonic-cli", "folder", "add", "lib", str(media / "music")], home, sup_env)
            runs.setdefault("supysonic_full_scan", []).append(_timed(theirs, home, sup_env))
            runs.setdefault("supysonic_rescan", []).append(_timed(theirs, home, sup_env))
        for key, timed in runs.items():
            result[key] = _median(timed)
        if supysonic:
            for kind in ("full_scan", "rescan"):
                result[f"{kind}_speedup"] = round(result[f"supysonic_{kind}"]["seconds"]
                                                  / result[f"revenge_{kind}"]["seconds"], 2)
                result[f"{kind}_speedup_per_round"] = [
                    round(t["seconds"] / o["seconds"], 2)
                    for o, t in zip(runs[f"revenge_{kind}"], runs[f"supysonic_{kind}"], strict=True)]
        else:
            result["supysonic"] = "not installed (apt-get install supysonic)"
        print(f"bench_scan --tagged {files} ({os.cpu_count()} CPUs): {counts}, generated in "
              f"{generation_seconds:.1f} s")
        for key, value in result.items():
            if isinstance(value, dict):
                own = value["scan_seconds"]
                inner = "" if own is None else f" (scan itself {own:.1f} s)"
                print(f"  {key:<22} {value['seconds']:>8.2f} s{inner}"
                      f"  peak RSS {value['peak_rss_mib']:>7.1f} MiB")
        for key in ("full_scan_speedup", "full_scan_speedup_per_round", "rescan_speedup",
                    "rescan_speedup_per_round", "supysonic"):
            if key in result:
                print(f"  {key:<22} {result[key]}")
        out = args.out if args.out != DEFAULT_OUT else ROOT / "bench-results" / "scan-tagged.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(f"  written: {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a --media-dir is the caller's cache: kept
    return 0


DEFAULT_OUT = ROOT / "bench-results" / "scan.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--tagged", type=int, help="measure a tagged library of this many files instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--media-dir", type=Path, help="reuse generated files here (made if missing)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.tagged:
        return tagged_library(args)

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
        write_json(args.out, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
