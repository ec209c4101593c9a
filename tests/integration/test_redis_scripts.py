"""The Redis script plumbing the progress, records and session stores share, against a real redis-server:
calls run once each and in order across a script flush, refusals and outages are StoreUnavailable naming
the store, a restarted server is used again without reopening, and the tests' key guard bites."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import LuaScript, ScriptedRedis, key_guard_lua
from tests.redisfix import RedisServer, redis_server  # noqa: F401  (fixture)

# Appends ARGV[1] to the list KEYS[1] and answers the new length: what ran, how often, in which order.
APPEND = LuaScript.of("append", "return redis.call('RPUSH', KEYS[1], ARGV[1])")
FAIL = LuaScript.of("fail", "return redis.error_reply('OOM pretend the server is full')")
KEY = "rv:{1}:log"


@pytest.fixture
async def scripted(redis_server: RedisServer) -> AsyncIterator[ScriptedRedis]:  # noqa: F811
    store = ScriptedRedis(redis_server.url, 2.0, "things", [APPEND, FAIL], logging.getLogger("test"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        client.close()


def logged(raw: redis.Redis) -> list[str]:
    return [v.decode() for v in raw.lrange(KEY, 0, -1)]


async def test_pipelined_calls_run_once_each_in_order_across_a_script_flush(
        scripted: ScriptedRedis, raw: redis.Redis) -> None:
    assert await scripted.eval_pipeline([("append", (KEY,), ("a",)), ("append", (KEY,), ("b",))]) == [1, 2]
    raw.script_flush()  # as after a restart: every call meets NOSCRIPT
    assert await scripted.eval_pipeline([("append", (KEY,), (x,)) for x in "cde"]) == [3, 4, 5]
    raw.script_flush()
    assert await scripted.evalsha("append", (KEY,), ("f",)) == 6
    assert logged(raw) == list("abcdef")


async def test_refusals_and_outages_are_unavailable_naming_the_store(
        scripted: ScriptedRedis, raw: redis.Redis, redis_server: RedisServer,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    refused = f"^things store {re.escape(redis_server.url)}: pretend the server is full$"
    with pytest.raises(StoreUnavailable, match=refused):
        await scripted.eval_pipeline([("append", (KEY,), ("a",)), ("fail", (KEY,), ())])
    assert "things store refused a script call: pretend the server is full" in caplog.text
    assert logged(raw) == ["a"]  # a pipeline is not a transaction: what ran before stays
    with pytest.raises(StoreUnavailable, match=r"^things store redis://"):
        await scripted.evalsha("fail", (KEY,), ())

    redis_server.restart(down_seconds=0)  # a crash: pooled connections are dead, scripts are gone
    await scripted.ping()  # the retry on a fresh connection
    assert await scripted.evalsha("append", (KEY,), ("b",)) == 2
    redis_server.stop(hard=True)
    with pytest.raises(StoreUnavailable, match=r"^things store redis://"):
        await scripted.eval_pipeline([("append", (KEY,), ("c",))])
    with pytest.raises(StoreUnavailable, match=r"^things store redis://"):
        await scripted.ping()
    redis_server.start()
    assert await scripted.eval_pipeline([("append", (KEY,), ("d",))]) == [3]


async def test_closed_and_unreachable_stores_refuse(redis_server: RedisServer) -> None:  # noqa: F811
    store = ScriptedRedis(redis_server.url, 2.0, "things", [APPEND], logging.getLogger("test"))
    with pytest.raises(StoreUnavailable, match=r"^things store is not open$"):
        await store.ping()
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailable, match=r"^things store is not open$"):
        await store.evalsha("append", (KEY,), ("a",))
    redis_server.stop(hard=True)
    with pytest.raises(StoreUnavailable, match=r"^things store redis://"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="not open"):  # a failed open leaves nothing half-open
        await store.ping()


def test_the_key_guard_refuses_undeclared_keys_and_unknown_commands(raw: redis.Redis) -> None:
    guard = key_guard_lua({"rpush": 1, "DEL": -1})
    assert raw.eval(guard + "return redis.call('RPUSH', KEYS[1], 'x')", 1, KEY) == 1
    assert raw.eval(guard + "return redis.pcall('DEL', KEYS[1], KEYS[2])", 2, KEY, "rv:{1}:b") == 1
    refused = {
        "return redis.call('RPUSH', 'rv:{1}:other', 'x')": "undeclared key rv:{1}:other",
        "return redis.call('DEL', KEYS[1], 'rv:{1}:other')": "undeclared key rv:{1}:other",
        "return redis.pcall('DEL', 'rv:{1}:other')": "undeclared key rv:{1}:other",
        "return redis.call('GET', KEYS[1])": "unknown command GET",
    }
    for body, message in refused.items():
        with pytest.raises(redis.ResponseError, match=re.escape(message)):
            raw.eval(guard + body, 1, KEY)
    assert raw.exists("rv:{1}:other") == 0


async def test_on_load_runs_on_open_and_after_every_reload(redis_server: RedisServer,  # noqa: F811
                                                           raw: redis.Redis) -> None:
    """The hook a store checks the server with (the progress store: its persistence) runs whenever the
    scripts are loaded: on open and when a call finds them gone (a restarted server); what it raises
    fails that call."""
    loads: list[tuple[object, ...]] = []
    refuse = False

    async def on_load() -> None:
        loads.append(await store.persistence())
        if refuse:
            raise StoreUnavailable("not today")

    store = ScriptedRedis(redis_server.url, 2.0, "things", [APPEND], logging.getLogger("test"),
                          on_load=on_load)
    await store.open()
    try:
        info, config, refused = loads[0]
        assert isinstance(info, dict) and "redis_version" in info and refused == ""
        assert isinstance(config, dict) and config["appendonly"] == "yes"  # the fixture is durable
        assert config["appendfsync"] == "always"
        await store.eval_pipeline([("append", (KEY,), ("a",))])
        assert len(loads) == 1
        raw.script_flush()
        refuse = True
        with pytest.raises(StoreUnavailable, match="not today"):
            await store.eval_pipeline([("append", (KEY,), ("b",))])
        assert len(loads) == 2
    finally:
        await store.close()
