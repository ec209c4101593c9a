"""The HTTP guard's pure parts: the connection cap under an open-file limit, the refusal log, and the
settings' defaults being the guard's (revenge/http_guard.py, revenge/server.py)."""

from __future__ import annotations

import logging

import pytest

from revenge.config import ConfigError, Settings, load_settings
from revenge.http_guard import ConnectionGate, HttpLimits, connection_cap
from revenge.server import http_limits


@pytest.mark.parametrize(("wanted", "limit", "cap"), [
    (16_384, None, 16_384),  # no limit
    (16_384, 1_048_576, 16_384),
    (16_384, 20_000, 16_384),  # 20 000 - 1024 reserved
    (16_384, 4096, 3072),  # a quarter kept for files
    (16_384, 1024, 768),
    (16_384, 256, 192),  # at least 64 kept
    (100, 256, 100),
    (16_384, 50, 1),
])
def test_connection_cap(wanted: int, limit: int | None, cap: int) -> None:
    assert connection_cap(wanted, limit) == cap


def test_the_gate_logs_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="revenge.http")
    gate = ConnectionGate(2)
    assert gate.admit(0) and gate.admit(1)
    assert not any(gate.admit(2) for _ in range(5))
    assert gate.admit(1)
    assert not gate.admit(2)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "2 connections are open (http_max_connections): closing new ones until some end",
        "accepting connections again; 5 were refused while 2 were open",
        "2 connections are open (http_max_connections): closing new ones until some end",
    ]


def test_the_settings_defaults_are_the_guards() -> None:
    assert http_limits(Settings()) == HttpLimits()


@pytest.mark.parametrize(("key", "value"), [
    ("http_max_header_bytes", "100"),
    ("http_max_headers", "0"),
    ("http_first_request_timeout_seconds", "0"),
    ("http_header_timeout_seconds", "-1"),
    ("http_body_timeout_seconds", "99999"),
    ("http_body_min_bytes_per_second", "-1"),
    ("http_max_connections", "0"),
])
def test_bad_limits_name_their_setting(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={f"REVENGE_{key.upper()}": value})
    assert info.value.key == f"REVENGE_{key.upper()}"
