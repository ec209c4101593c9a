"""Durability levels from what a Redis-protocol server answers (pure), and the refusal that names the
setting. INFO answers go through redis-py's own parser, as the store receives them."""

from __future__ import annotations

import pytest
from redis._parsers.helpers import parse_info

from revenge.progress.durability import SQLITE_DURABILITY, Durability, redis_durability, refusal

REDIS_INFO = parse_info(b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:Linux\r\n"
                        b"tcp_port:6379\r\n")
# Dragonfly's INFO server: it claims a redis_version for clients' sake and adds its own.
DRAGONFLY_INFO = parse_info(b"# Server\r\nredis_version:7.4.0\r\ndragonfly_version:df-v1.25.2\r\n"
                            b"redis_mode:standalone\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n"
                            b"tcp_port:6379\r\nthread_count:2\r\nuptime_in_seconds:3\r\n")


def config(appendonly: str, appendfsync: str) -> dict[str, str]:
    """CONFIG GET append* as redis-py returns it."""
    return {"appendonly": appendonly, "appendfsync": appendfsync, "appendfilename": "appendonly.aof",
            "appenddirname": "appendonlydir"}


@pytest.mark.parametrize(("appendonly", "appendfsync", "level"), [
    ("yes", "always", "fsync_always"),
    ("yes", "everysec", "fsync_everysec"),
    ("yes", "no", "fsync_os"),
    ("no", "always", "none"),
    ("no", "everysec", "none"),
    ("yes", "sometimes", "unknown"),
])
def test_redis_levels(appendonly: str, appendfsync: str, level: str) -> None:
    d = redis_durability(REDIS_INFO, config(appendonly, appendfsync))
    assert d.level == level
    assert d.server == "redis 7.0.15"
    assert d.durable is (level == "fsync_always")


def test_bytes_answers_and_case_are_accepted() -> None:
    assert redis_durability(REDIS_INFO, {b"appendonly": b"YES", b"appendfsync": b"Always"}).durable


def test_dragonfly_is_detected_and_has_no_append_only_file() -> None:
    # Whatever CONFIG GET would say: Dragonfly has no AOF (it snapshots).
    d = redis_durability(DRAGONFLY_INFO, config("yes", "always"))
    assert d.level == "none" and d.server == "dragonfly df-v1.25.2"
    assert "snapshot" in d.detail
    assert redis_durability(DRAGONFLY_INFO, None, "ERR unknown command").level == "none"


def test_a_refused_config_get_is_unknown_and_says_why() -> None:
    d = redis_durability(REDIS_INFO, None, "ERR unknown command 'CONFIG'")
    assert d.level == "unknown" and not d.durable
    assert "unknown command 'CONFIG'" in d.detail
    assert redis_durability(REDIS_INFO, {}).level == "unknown"  # an answer without the fields


def test_refusal_names_the_setting_and_the_fix() -> None:
    none = redis_durability(REDIS_INFO, config("no", "everysec"))
    message = refusal(none, "required", "progress store")
    assert message is not None
    assert message.startswith("progress store: acknowledged writes would not survive a restart")
    assert "appendonly no" in message and "appendfsync always" in message
    assert 'store_durability = "accept_loss"' in message and "REVENGE_STORE_DURABILITY" in message
    assert refusal(none, "accept_loss", "progress store") is None
    everysec = redis_durability(REDIS_INFO, config("yes", "everysec"))
    assert refusal(everysec, "required", "progress store") is not None  # see README: Durability
    dragonfly = refusal(redis_durability(DRAGONFLY_INFO, None), "required", "progress store")
    assert dragonfly is not None and "use Redis with appendonly yes" in dragonfly
    assert refusal(redis_durability(REDIS_INFO, config("yes", "always")), "required", "x") is None
    assert refusal(SQLITE_DURABILITY, "required", "x") is None


def test_as_dict_is_what_healthz_shows() -> None:
    assert Durability("none", "redis 7", "why").as_dict() == {"level": "none", "server": "redis 7",
                                                              "detail": "why"}
