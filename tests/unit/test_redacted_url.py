"""Store URLs in errors, logs and /healthz never show the password."""

from __future__ import annotations

import asyncio
import logging

import pytest

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import ScriptedRedis, redacted_url


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:hunter2@db.example:6380/1", "redis://:***@db.example:6380/1"),
    ("rediss://app:hunter2@db.example/2", "rediss://app:***@db.example/2"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
])
def test_redacted_url(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


async def test_an_unreachable_store_names_it_without_its_password() -> None:
    store = ScriptedRedis("redis://app:hunter2@127.0.0.1:1/0", 0.5, "progress", [], logging.getLogger("t"))
    await store.open()  # no scripts to load: nothing is sent yet
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await asyncio.wait_for(store.ping(), 10)
    finally:
        await store.close()
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)
