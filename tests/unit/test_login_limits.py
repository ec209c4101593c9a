from __future__ import annotations

from revenge.security.login_limits import LoginLimiter


def test_a_key_is_refused_past_its_failures_until_the_oldest_ages_out() -> None:
    limits = LoginLimiter(max_failures=3, window=60)
    for t in (0.0, 10.0, 20.0):
        assert limits.retry_after(["user:ann"], t) is None
        limits.failed(["user:ann", "addr:1.2.3.4"], t)
    assert limits.retry_after(["user:ann"], 30.0) == 30.0  # the failure at 0 leaves the window at 60
    assert limits.retry_after(["user:bob", "addr:1.2.3.4"], 30.0) == 30.0  # the address is over too
    assert limits.retry_after(["user:bob", "addr:5.6.7.8"], 30.0) is None
    assert limits.retry_after(["user:ann"], 60.0) is None  # one failure aged out: one more try


def test_success_clears_the_user_not_the_address() -> None:
    limits = LoginLimiter(max_failures=2, window=60)
    limits.failed(["user:ann", "addr:a"], 0)
    limits.failed(["user:ann", "addr:a"], 1)
    limits.succeeded("user:ann")
    assert limits.retry_after(["user:ann"], 2) is None
    assert limits.retry_after(["addr:a"], 2) == 58


def test_the_table_is_bounded_stalest_first() -> None:
    limits = LoginLimiter(max_failures=1, window=60, max_keys=100)
    for n in range(1000):
        limits.failed([f"user:{n}"], 0)
    assert len(limits._failures) == 100
    assert limits.retry_after(["user:999"], 1) is not None and limits.retry_after(["user:0"], 1) is None
