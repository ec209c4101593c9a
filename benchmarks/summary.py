"""One Markdown table of the headline figures in ``bench-results/*.json`` (what scripts/bench wrote).

Each benchmark keeps its own full JSON and table; this picks, for each, the ratios and counts the
issues set goals for, so one page shows where the project stands. A benchmark not run is left out.

    .venv/bin/python benchmarks/summary.py [bench-results]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

Row = tuple[str, str, str]  # what, measured, goal


def _segments(r: dict[str, Any]) -> list[Row]:
    cold, ff, coder = r["cold_segment_ms"], r["vs_ffmpeg_subprocess_ms"], r["aac_coder_ms"]
    seek, cached = r["seek_position_ms"], r["cached_segment"]
    return [
        ("cold segment over HTTP / in-process encode (p50)",
         f"{cold['ratio_http_over_in_process']:.3f} ({cold['http_p50']:g} / {cold['in_process_p50']:g} ms)",
         "≤ 1.15"),
        ("ffmpeg subprocess per segment / ours over HTTP (p50)",
         f"{ff['speedup']:.3f} ({ff['ffmpeg_p50']:g} / {ff['ours_http_p50']:g} ms)", "≥ 1.4"),
        (f"encoder runs of {r['encoder_runs_ms']['run_segments']}: one fresh encoder per segment / "
         "continued (in-process p50)",
         f"{r['encoder_runs_ms']['one_encoder_per_segment_in_process_p50']:g} / "
         f"{r['encoder_runs_ms']['continued_runs_in_process_p50']:g} ms; a cold request at a run's "
         f"start / at its end over HTTP {r['encoder_runs_ms']['cold_at_run_start_http_p50']:g} / "
         f"{r['encoder_runs_ms']['cold_at_last_of_run_http_p50']:g} ms", "report"),
        ("aac_coder twoloop / fast (in-process p50)",
         f"{coder['fast_speedup']:.3f} ({coder['twoloop_p50']:g} / {coder['fast_p50']:g} ms)", "report"),
        (f"segment at 90 % / at 0 % of a {seek['file_minutes']}-minute FLAC (p95)",
         f"{seek['p95_ratio_90_over_0']:.3f}", "≤ 1.2"),
        ("cached segment: req/s ours / bytes from a dict",
         f"{cached['throughput_ratio_ours_over_dict']:.3f} ({cached['ours_req_per_s']} / "
         f"{cached['dict_req_per_s']} req/s, p50 {cached['ours_p50_ms']:g} ms)", "report"),
    ]


def _progress(r: dict[str, Any]) -> list[Row]:
    store = r["store"]
    rows = []
    for scenario, http in r["http"].items():
        for name in ("redis", "sqlite"):
            h = http[name]
            goal = "≥ 0.7" if name == "redis" and scenario == "listeners" else "report"
            rows.append((f"progress PUT ({scenario}), {name} store / bare endpoint (req/s)",
                         f"{h['ratio_to_bare']:.2f} ({h['req_per_s']:.0f} / {http['bare']['req_per_s']:.0f}, "
                         f"p99 {h['p99_ms']:.1f} ms)", goal))
    rows.append(("Redis store batched updates/s / redis-benchmark SET -P 100",
                 f"{store['redis_store_to_set_ratio']:.3f} ({store['redis_store_updates_per_s']:.0f} / "
                 f"{store['redis_benchmark_set_per_s']:.0f})", "report"))
    return rows


def _listeners(r: dict[str, Any]) -> list[Row]:
    s = r["summary"]
    goal = "≥ 100" if s["scenario"] == "cold" else "≥ 2000"
    what = {"cold": "players with zero stalls, all cold (distinct FLAC → aac-128)",
            "cached": "players with zero stalls, all on cached segments"}[s["scenario"]]
    if "largest_pass" in s:
        measured = f"{s['largest_pass']} (first failure at {s['smallest_fail']})"
    else:
        n = r["reports"][-1]["config"]["listeners"] if r["reports"] else "?"
        measured = f"N = {n}: {'passed' if s['passed'] else 'FAILED'}"
    best = [x for x in r["reports"] if x["verdict"]["ok"]]
    if best:
        top = max(best, key=lambda x: x["config"]["listeners"])
        server = top["server"] or {}
        measured += (f"; at {top['config']['listeners']}: server CPU "
                     f"{server.get('cpu_percent_mean', '?')} %, RSS {server.get('rss_mib_peak', '?')} MiB, "
                     f"client CPU {top['client']['pid_cpu_percent_mean']} %")
    return [(what, measured, goal)]


def _scan(r: dict[str, Any]) -> list[Row]:
    return [(f"library scan of {r['files']} files: cold files/s, rescan speed-up",
             f"{r['cold_files_per_second']:g} files/s, {r['rescan_speedup']:g}x", "report"),
            ("server RSS idle with that library", f"{r['server_idle_rss_mib']:g} MiB", "report")]


def _stream(r: dict[str, Any]) -> list[Row]:
    rows = []
    for fmt in ("mp3", "opus", "aac"):
        if fmt in r:
            ttfb, cpu = r[fmt]["ttfb_ms"], r[fmt]["cpu_s"]
            rows += [(f"stream {fmt} {r[fmt]['kbps']}k: time to first byte ours / ffmpeg CLI",
                      f"{ttfb['ratio']:.3f} ({ttfb['ours_p50']:g} / {ttfb['ffmpeg_p50']:g} ms)", "≤ 0.5"),
                     (f"stream {fmt} {r[fmt]['kbps']}k: CPU ours (server) / ffmpeg CLI",
                      f"{cpu['ratio']:.3f} ({cpu['ours_p50']:g} / {cpu['ffmpeg_p50']:g} s)", "≤ 1.05")]
    return rows


def _listen(r: dict[str, Any]) -> list[Row]:
    rows = []
    for name, values in r.items():
        if isinstance(values, dict) and "cpu_s" in values:
            cpu, first = values["cpu_s"], values["first_audio_ms"]
            rows += [(f"whole listen {name}: CPU ours (server) / one continuous ffmpeg",
                      f"{cpu['ratio']:.3f} ({cpu['ours_p50']:g} / {cpu['ffmpeg_p50']:g} s)", "≤ 1.05"),
                     (f"whole listen {name}: time to first audio ours / ffmpeg",
                      f"{first['ratio']:.3f} ({first['ours_p50']:g} / {first['ffmpeg_p50']:g} ms)", "≤ 0.5")]
    return rows


def _scaleout(r: dict[str, Any]) -> list[Row]:
    rows = []
    for t in r["rows"]:
        if t["mode"] != "cold":
            continue
        name = f"{t['instances']}x {t['routing']} cold, {t['listeners']} players"
        rows += [(f"{name}: own-cache hits (+ own in-flight)",
                  f"{t['own_cache_hit_share']:.1%} ({t['hit_or_own_inflight_share']:.1%})",
                  "≥ 95 % with hash"),
                 (f"{name}: encode jobs per segment played, stalls",
                  f"{t['encodes_per_segment'] or 0:.2f}, {t['stalls']}", "lower with hash, 0")]
    return rows


SOURCES: tuple[tuple[str, Callable[[dict[str, Any]], list[Row]]], ...] = (
    ("segments.json", _segments),
    ("progress.json", _progress),
    ("listeners-cold.json", _listeners),
    ("listeners-cached.json", _listeners),
    ("scan.json", _scan),
    ("stream.json", _stream),
    ("listen.json", _listen),
    ("scaleout.json", _scaleout),
)


def summary(results: Path) -> str:
    lines = ["| benchmark | what | measured | goal |", "|---|---|---|---|"]
    for name, rows_of in SOURCES:
        path = results / name
        if not path.exists():
            continue
        try:
            rows = rows_of(orjson.loads(path.read_bytes()))
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            rows = [("(unreadable)", f"{type(exc).__name__}: {exc}", "")]
        for what, measured, goal in rows:
            lines.append(f"| {name} | {what} | {measured} | {goal} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
                  / "bench-results"))
