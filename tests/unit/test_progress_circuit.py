"""The store circuit as a plain state machine: the clock is an argument."""

from __future__ import annotations

import pytest

from revenge.progress.circuit import Circuit


def test_first_failure_opens_and_reports_the_transition_once() -> None:
    c = Circuit(probe_interval=0.5)
    assert not c.is_open
    assert c.failed(10.0, "timed out") is True
    assert c.is_open and c.cause == "timed out" and c.opened_at == 10.0
    # Further failures while open are not transitions (nothing more to log) and keep the start time.
    assert c.failed(10.2, "connection refused") is False
    assert c.opened_at == 10.0 and c.cause == "timed out"


def test_probes_are_spaced_and_only_a_probe_closes() -> None:
    c = Circuit(probe_interval=0.5)
    c.failed(10.0, "timed out")
    assert c.probe_wait(10.0) == 0.5
    assert c.probe_wait(10.7) == 0.0
    c.probe_failed(10.7, "connection refused")
    assert c.is_open and c.cause == "connection refused"
    assert c.probe_wait(10.7) == 0.5
    assert c.probe_succeeded(11.5) == pytest.approx(1.5)  # how long it was down
    assert not c.is_open and c.cause == ""
    # Closed: a success is not a transition, a late probe failure changes nothing.
    assert c.probe_succeeded(12.0) is None
    c.probe_failed(12.0, "late")
    assert not c.is_open


def test_reopens_after_closing() -> None:
    c = Circuit(probe_interval=1.0)
    c.failed(1.0, "a")
    c.probe_succeeded(2.0)
    assert c.failed(5.0, "b") is True
    assert c.opened_at == 5.0 and c.probe_wait(5.0) == 1.0


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Circuit(probe_interval=0)
