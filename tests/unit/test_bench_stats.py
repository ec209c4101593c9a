"""The load simulator's pure helpers: percentiles, summaries, item assignment, /metrics and /proc
parsing, CPU/RSS summaries, and the report table."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.loadtest import procstat
from revenge.loadtest.listener import Tally
from revenge.loadtest.procstat import ProcSample
from revenge.loadtest.report import ResourceUse, build_report, format_table
from revenge.loadtest.run import (
    BenchError,
    assign_items,
    counter_delta,
    parse_counters,
    progress_line,
    raise_fd_limit,
)
from revenge.loadtest.stats import Summary, percentile


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=100))
def test_percentile_agrees_with_numpy(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert percentile(ordered, q) == pytest.approx(float(np.percentile(ordered, q)), rel=1e-9, abs=1e-9)


def test_percentile_edges() -> None:
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_in_milliseconds() -> None:
    s = Summary.of([0.010, 0.020, 0.030, 0.040, 1.0])
    assert (s.count, s.p50, s.max) == (5, pytest.approx(30.0), pytest.approx(1000.0))
    assert s.mean == pytest.approx(220.0)
    assert Summary.of([]).as_json() == {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0,
                                        "max": 0.0}


def test_distinct_assignment_gives_every_player_its_own_item() -> None:
    ids = [f"item{i}" for i in range(10)]
    orders = assign_items(ids, 5, None)
    assert [o[0] for o in orders] == ids[:5]
    assert orders[0] == ["item0", "item5"]  # then moves on by the number of players
    assert len({o[0] for o in assign_items(ids, 10, None)}) == 10
    # Fewer items than players: they wrap (the report says how many distinct first items there were).
    assert [o[0] for o in assign_items(ids[:3], 5, None)] == ["item0", "item1", "item2", "item0", "item1"]


def test_shared_assignment_uses_the_first_k_items() -> None:
    ids = [f"item{i}" for i in range(10)]
    orders = assign_items(ids, 4, 3)
    assert [o[0] for o in orders] == ["item0", "item1", "item2", "item0"]
    assert all(sorted(o) == ["item0", "item1", "item2"] for o in orders)
    with pytest.raises(BenchError):
        assign_items([], 1, None)


def test_server_counters_from_prometheus_text() -> None:
    text = "\n".join([
        "# HELP revenge_segment_requests_total HLS media segment requests by cache result",
        "# TYPE revenge_segment_requests_total counter",
        'revenge_segment_requests_total{cache="hit"} 120.0',
        'revenge_segment_requests_total{cache="miss"} 7.0',
        'revenge_segment_requests_created{cache="hit"} 1.7e+09',
        'revenge_encode_seconds_count{profile="aac-128"} 7.0',
        'revenge_encode_seconds_count{profile="aac-64"} 2.0',
        'revenge_encode_seconds_sum{profile="aac-128"} 0.7',
        'revenge_encode_seconds_sum{profile="aac-64"} 0.2',
        'revenge_http_503_total{route="/api/v1/stream/{item_id}/playlist.m3u8"} 3.0',
    ])
    before = parse_counters(text)
    assert before == {"segments_hit": 120.0, "segments_miss": 7.0, "encodes": 9.0,
                      "encode_seconds": pytest.approx(0.9), "http_503": 3.0}
    after = dict(before, segments_hit=130.0, segments_inflight=2.0)
    assert counter_delta(before, after) == {"encode_seconds": 0.0, "encodes": 0.0, "http_503": 0.0,
                                            "segments_hit": 10.0, "segments_inflight": 2.0,
                                            "segments_miss": 0.0}
    assert counter_delta(None, after) is None


def test_stat_cpu_ticks_with_a_hostile_command_name() -> None:
    # Field 2 may contain spaces and ")"; utime and stime are fields 14 and 15.
    fields = ["S"] + [str(n) for n in range(4, 14)] + ["700", "42"] + ["0"] * 30
    stat = "1234 (we ird) (name) " + " ".join(fields)
    assert procstat.parse_stat_cpu_ticks(stat) == 742


def test_own_process_sample_and_status_parsing() -> None:
    sample = procstat.sample(os.getpid())
    assert sample.rss_bytes > 0 and sample.hwm_bytes >= sample.rss_bytes and sample.cpu_seconds > 0
    assert procstat.parse_status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS") == 2048
    with pytest.raises(KeyError):
        procstat.parse_status_kib("Name:\tx\n", "VmHWM")


def test_the_listening_socket_is_found_by_port() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert procstat.pid_listening_on(port) == os.getpid()
    tables = ["  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  inode\n"
              "   0: 0100007F:1E14 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 4242 1\n"
              "   1: 0100007F:1E14 0100007F:9999 01 00000000:00000000 00:00000000 00000000  0 0 4343 1\n"]
    assert procstat.listening_inodes(0x1E14, tables) == {4242}  # only the LISTEN row


def test_local_hosts() -> None:
    assert procstat.is_local_host("127.0.0.1") and procstat.is_local_host("localhost")
    assert not procstat.is_local_host("192.0.2.1")  # TEST-NET-1: never an address of this machine


def test_resource_use_summary() -> None:
    use = ResourceUse()
    mib = 1024 * 1024
    use.add(0.0, ProcSample(10.0, 100 * mib, 100 * mib))
    use.add(1.0, ProcSample(10.5, 120 * mib, 120 * mib))
    use.add(2.0, ProcSample(12.0, 110 * mib, 120 * mib))
    summary = use.summary()
    assert summary == {"cpu_percent_mean": 100.0, "cpu_percent_peak": 150.0, "rss_mib_start": 100.0,
                       "rss_mib_end": 110.0, "rss_mib_peak": 120.0}
    assert ResourceUse().summary() is None


def _report(tally: Tally, lags: list[float]) -> dict[str, object]:
    config = {"url": "http://127.0.0.1:7700/", "listeners": 2, "duration_s": 5.0, "speed": 1.0, "seed": 1,
              "ramp_s": 1.0, "buffer_segments": 3, "start_buffer_s": 2.5, "heartbeat_s": 10.0,
              "seeks_per_minute": 0.5,
              "profile": "aac-128", "codecs": ["aac"], "max_bitrate": None, "item_type": "track",
              "source_codec": None, "items": "distinct", "items_in_play": 2, "distinct_first_items": 2,
              "warm": False, "warm_segments": 0, "keys": 1}
    return build_report(config=config, tally=tally, elapsed=5.0, started_at=1.7e9, lags=lags, server=None,
                        server_pid=None, same_process=False, client=ResourceUse(),
                        server_counters={"segments_hit": 3.0, "encodes": 2.0, "encode_seconds": 0.3})


def test_report_and_table_of_a_clean_run() -> None:
    tally = Tally(cold=[0.1, 0.2], cached=[0.001] * 10, heartbeat=[0.004], segments=12,
                  segment_bytes=2_000_000, sessions=2)
    report = _report(tally, [0.001] * 20)
    assert report["verdict"] == {"stalls": 0, "errors": 0, "zero_stalls": True, "ok": True,
                                 "client_overloaded": False}
    assert report["segments"]["cold_ms"]["count"] == 2  # type: ignore[index]
    table = format_table(report)
    assert "verdict: OK" in table and "segment, cold" in table and "hit 3" in table
    assert "encodes 2, 150 ms each" in table


def test_report_of_a_run_with_stalls_errors_and_a_late_client() -> None:
    tally = Tally(stalls=[0.5, 1.5], stalled_listeners={0})
    tally.error("session 429", "429 too_many_sessions: at most 4 playback sessions")
    report = _report(tally, [0.5] * 10)
    verdict = report["verdict"]
    assert verdict == {"stalls": 2, "errors": 1, "zero_stalls": False, "ok": False,
                       "client_overloaded": True}
    assert report["stalls"] == {"count": 2, "players": 1, "total_s": 2.0, "max_s": 1.5}
    table = format_table(report)
    assert "2 stall(s), 1 error(s)" in table
    assert "WARNING" in table and "--key" in table  # says the client was late and how to pass the cap


def test_first_request_classification_is_by_path() -> None:
    tally = Tally()
    assert tally.first_request("http://h/api/v1/stream/a/aac-128/segment3.m4s?t=ONE")
    assert not tally.first_request("http://h/api/v1/stream/a/aac-128/segment3.m4s?t=OTHER")
    assert tally.first_request("http://h/api/v1/stream/a/aac-64/segment3.m4s?t=ONE")


def test_progress_line() -> None:
    tally = Tally(segments=5, active=3)
    line = progress_line(tally, 30.0, 60.0, 4, width=10)
    assert line.startswith("[#####.....]") and "players 3/4" in line and "segments 5" in line



def test_the_open_file_limit_is_raised_for_the_players() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = raise_fd_limit(300)  # two connections per player, plus room
    wanted = 2 * 300 + 256
    assert got == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert got >= (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))
