"""The run's report: one JSON-ready dict (for machines) and the terminal table drawn from it (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from revenge.loadtest.procstat import ProcSample
from revenge.loadtest.stats import Summary, percentile

if TYPE_CHECKING:
    from revenge.loadtest.listener import Tally

MIB = 1024 * 1024
# Beyond this the load generator itself is late waking its players: stalls may be the client's.
CLIENT_LAG_LIMIT_S = 0.1
COLD_RULE = ("cold = the first request of an (item, profile, segment) in this run, cached = requested "
             "before in this run (warm-up included); the server may already hold a 'cold' one from an "
             "earlier run or its prefetch; server_counters gives the server's own counts")


@dataclass
class ResourceUse:
    """CPU and memory samples of one process over the run."""

    samples: list[tuple[float, ProcSample]] = field(default_factory=list)

    def add(self, now: float, sample: ProcSample) -> None:
        self.samples.append((now, sample))

    def summary(self) -> dict[str, float] | None:
        if len(self.samples) < 2:
            return None
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        peaks = [
            (b.cpu_seconds - a.cpu_seconds) / (tb - ta)
            for (ta, a), (tb, b) in zip(self.samples, self.samples[1:], strict=False)
            if tb - ta >= 0.5
        ]
        rss = [s.rss_bytes for _, s in self.samples]
        return {
            "cpu_percent_mean": round(100.0 * (last.cpu_seconds - first.cpu_seconds) / max(t1 - t0, 1e-9), 1),
            "cpu_percent_peak": round(100.0 * max(peaks, default=0.0), 1),
            "rss_mib_start": round(first.rss_bytes / MIB, 1),
            "rss_mib_end": round(last.rss_bytes / MIB, 1),
            "rss_mib_peak": round(max(rss) / MIB, 1),
        }


def build_report(*, config: dict[str, Any], tally: Tally, elapsed: float, started_at: float,
                 lags: list[float], server: ResourceUse | None, server_pid: int | None,
                 same_process: bool, client: ResourceUse, server_counters: dict[str, float] | None
                 ) -> dict[str, Any]:
    stalls = len(tally.stalls)
    errors = tally.error_count
    ordered_lags = sorted(lags)
    lag_p99 = percentile(ordered_lags, 99) if ordered_lags else 0.0
    client_use = client.summary() or {}
    server_use = server.summary() if server is not None else None
    return {
        "tool": "revenge bench",
        "started_at": dt.datetime.fromtimestamp(started_at, dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "elapsed_s": round(elapsed, 3),
        "verdict": {
            "stalls": stalls,
            "errors": errors,
            "zero_stalls": stalls == 0,
            "ok": stalls == 0 and errors == 0,
            "client_overloaded": lag_p99 > CLIENT_LAG_LIMIT_S,
        },
        "players": {
            "sessions": tally.sessions,
            "seeks": tally.seeks,
            "items_finished": tally.items_finished,
            "profiles": dict(tally.profiles),
        },
        "segments": {
            "count": tally.segments,
            "bytes": tally.segment_bytes,
            "mbit_per_s": round(8 * tally.segment_bytes / max(elapsed, 1e-9) / 1e6, 3),
            "cold_ms": Summary.of(tally.cold).as_json(),
            "cached_ms": Summary.of(tally.cached).as_json(),
            "classification": COLD_RULE,
        },
        "stalls": {
            "count": stalls,
            "players": len(tally.stalled_listeners),
            "total_s": round(sum(tally.stalls), 3),
            "max_s": round(max(tally.stalls, default=0.0), 3),
        },
        "startup_ms": Summary.of(tally.startup).as_json(),
        "seek_ms": Summary.of(tally.seek).as_json(),
        "heartbeat_ms": Summary.of(tally.heartbeat).as_json(),
        "session_start_ms": Summary.of(tally.session_start).as_json(),
        "playlists_ms": Summary.of(tally.playlist).as_json(),
        "busy_503": tally.busy,
        "errors": {"count": errors, "by_kind": dict(tally.errors), "samples": list(tally.error_samples)},
        "server": None if server_use is None else {"pid": server_pid, "same_process": same_process,
                                                   **server_use},
        "server_counters": server_counters,
        "client": {
            "pid_cpu_percent_mean": client_use.get("cpu_percent_mean"),
            "rss_mib_peak": client_use.get("rss_mib_peak"),
            "loop_lag_ms_p99": round(lag_p99 * 1000, 1),
            "loop_lag_ms_max": round(max(lags, default=0.0) * 1000, 1),
        },
    }


def _row(label: str, summary: dict[str, Any]) -> str:
    if not summary["count"]:
        return f"  {label:<34}{0:>8}{'-':>9}{'-':>9}{'-':>9}{'-':>9}"
    return (f"  {label:<34}{summary['count']:>8}{summary['p50']:>9.1f}{summary['p95']:>9.1f}"
            f"{summary['p99']:>9.1f}{summary['max']:>9.1f}")


def format_table(report: dict[str, Any]) -> str:
    c = report["config"]
    seg = report["segments"]
    lines = [
        f"revenge bench: {c['listeners']} players, {c['duration_s']:g} s at {c['speed']:g}x "
        f"against {c['url']}",
        f"  items: {c['items']} ({c['items_in_play']} in play"
        + (f", warmed {c['warm_segments']} segments" if c["warm"] else "")
        + f"), variant {c['profile'] or 'server first'}, buffer {c['buffer_segments']} segments "
        f"(plays from {c['start_buffer_s']:g} s),"
        f" heartbeat {c['heartbeat_s']:g} s, {c['seeks_per_minute']:g} seeks/min, seed {c['seed']}",
        "",
        f"  {'latency (ms)':<34}{'count':>8}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}",
        _row("segment, cold (first request)", seg["cold_ms"]),
        _row("segment, cached (requested before)", seg["cached_ms"]),
        _row("startup (session → first audio)", report["startup_ms"]),
        _row("after a seek (→ first audio)", report["seek_ms"]),
        _row("heartbeat (progress write)", report["heartbeat_ms"]),
        _row("session start", report["session_start_ms"]),
        _row("playlists (multivariant + media)", report["playlists_ms"]),
        "",
        f"  stalls {report['stalls']['count']} (players {report['stalls']['players']}, "
        f"{report['stalls']['total_s']:g} s in all, longest {report['stalls']['max_s']:g} s)   "
        f"503 answers {report['busy_503']}   errors {report['errors']['count']}",
        f"  segments {seg['count']} ({seg['bytes'] / MIB:.1f} MiB, {seg['mbit_per_s']:g} Mbit/s), "
        f"sessions {report['players']['sessions']}, seeks {report['players']['seeks']}",
    ]
    for kind, count in sorted(report["errors"]["by_kind"].items()):
        lines.append(f"    error {kind}: {count}")
    for sample in report["errors"]["samples"][:5]:
        lines.append(f"      e.g. {sample[:160]}")
    server = report["server"]
    if server is not None:
        note = " (same process as the client)" if server["same_process"] else ""
        lines.append(f"  server pid {server['pid']}{note}: CPU {server['cpu_percent_mean']:g} % mean, "
                     f"{server['cpu_percent_peak']:g} % peak (100 % = one core); RSS "
                     f"{server['rss_mib_start']:g} → {server['rss_mib_end']:g} MiB, "
                     f"peak {server['rss_mib_peak']:g}")
    else:
        lines.append("  server CPU/RSS: not measured (not local; pass --server-pid for a local server)")
    counters = report["server_counters"]
    if counters:
        requests = ", ".join(f"{k.removeprefix('segments_')} {v:g}" for k, v in counters.items()
                             if k.startswith("segments_"))
        encodes = counters.get("encodes", 0.0)
        mean = f", {1000 * counters.get('encode_seconds', 0.0) / encodes:.0f} ms each" if encodes else ""
        lines.append(f"  server (from /metrics): segment requests {requests or 'none'}; "
                     f"encodes {encodes:g}{mean}; 503 answers {counters.get('http_503', 0.0):g}")
    client = report["client"]
    lines.append(f"  client: CPU {client['pid_cpu_percent_mean']} %, event-loop lag p99 "
                 f"{client['loop_lag_ms_p99']:g} ms (max {client['loop_lag_ms_max']:g})")
    verdict = report["verdict"]
    if verdict["client_overloaded"]:
        lines.append("  WARNING: the load generator itself is late (loop lag): stalls may be the client's")
    if "session 429" in report["errors"]["by_kind"]:
        lines.append("  hint: the session cap per user was reached: pass more --key (one per user) or raise "
                     "REVENGE_SESSIONS_PER_USER on the server")
    lines.append("  verdict: " + ("OK: zero stalls, zero errors" if verdict["ok"] else
                                  f"{verdict['stalls']} stall(s), {verdict['errors']} error(s)"))
    return "\n".join(lines)
