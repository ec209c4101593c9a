from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.redisfix import SNAPSHOTS_ONLY, RedisServer, running_redis

# Shared machines are noisy: no per-example deadline, and a fixed profile for CI.
hypothesis_settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def snapshot_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that only snapshots (Dragonfly's persistence), stopped hard at the end."""
    with running_redis(tmp_path / "redis", extra_args=SNAPSHOTS_ONLY) as server:
        yield server
