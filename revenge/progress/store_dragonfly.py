"""The Dragonfly/Redis progress store (``REVENGE_STORE=redis://host:port/db``), for multi-instance setups.

Keys (every one carries the user id as a hash tag, so all keys of one user share a cluster slot):

* ``rv:{<user>}:p:<item>``  hash: the scalar fields of ``ProgressState`` (``ProgressState.to_hash``),
  and from a journaled store what the state remembers of its actions (``replay.Seen``: ``ops``,
  ``hidden_ms``, and ``reset_ms``, which a reset leaves behind alone as a tombstone)
* ``rv:{<user>}:d:<item>``  hash: device id → ``"position:event_ts:updated"`` (``DevicePosition``)
* ``rv:{<user>}:c:<type>``  sorted set: item ids that are continue-listening candidates (all but the
  age test), scored by ``last_played_at``
* ``rv:{<user>}:r:<type>``, ``rv:{<user>}:n:<type>``  sorted sets: every item played, scored by
  ``last_played_at``; those played at least once, scored by ``play_count`` (``played``: the albums
  sorts recently_played and frequent). A state stored before they existed joins them on its next write.

Writes are Lua scripts (``lua/*.lua``, each prefixed with ``lua/common.lua``) that apply
``rules.apply_update`` / ``mark_*`` / ``set_hidden`` atomically per (user, item). Every key a script
touches is passed in KEYS (Dragonfly refuses undeclared keys); the state's fields, the policy thresholds
and the rules' constants are written into the scripts' text from Python (``revenge.progress.scripts``)
or passed in ARGV, so Python stays the single source of them.

On open, after a restart (``NOSCRIPT``) and on every probe of an outage the store reads the server's
persistence and refuses one on which acknowledged writes would not survive a restart, unless
``store_durability`` accepts the loss (``revenge.progress.durability``).

A batch is ONE ``pipeline(transaction=False)`` of ``EVALSHA`` calls (no MULTI: a pipeline is one round
trip, and each script is already atomic for its keys), split into chunks of at most ``pipeline_max``
commands. Each call applies up to ``run_max`` updates in batch order, of any users on a single server and
of the users of one slot on a cluster (which refuses calls across slots; ``INFO cluster`` tells which it
is). So the per-call costs on both sides are paid per call rather than per update, and an item updated
several times in a call is read and written once.
``NOSCRIPT`` (a fresh or restarted server, a ``SCRIPT FLUSH``) loads the scripts and re-runs the
pipeline from the first refused call on. A connection that died with the server is replaced and the
command retried once, so the store recovers by itself; anything else that fails to reach or write the
server — refused connections, timeouts, ``LOADING``, ``OOM``, ``READONLY`` — is ``StoreUnavailable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from redis.crc import key_slot
from redis.exceptions import RedisError

from revenge.journal import ServerMark, read_server_mark
from revenge.library.model import ITEM_TYPES, ItemType
from revenge.progress import rules
from revenge.progress.durability import Durability, StoreNotDurable, redis_durability, refusal, with_journal
from revenge.progress.model import (
    DEFAULT_POLICIES,
    PlayedItem,
    PlayedOrder,
    Policies,
    ProgressOp,
    ProgressState,
    ProgressUpdate,
)
from revenge.progress.redis_layout import (  # the layout's names are the store's too (tests use them)
    UpdateCall,
    continue_key,
    parse_state,
    plays_key,
    recent_key,
    script_keys,
    state_key,
    state_of_row,
)
from revenge.progress.replay import MAX_OPS_SEEN
from revenge.progress.scripts import scripts
from revenge.redis_scripts import ScriptCall, ScriptedRedis, reply_text

if TYPE_CHECKING:
    from revenge.config import Settings

log = logging.getLogger("revenge.progress")

PIPELINE_MAX = 512  # EVALSHAs per pipeline (one round trip)
# Updates per apply_updates.lua call: big enough to pay the per-call costs once for many updates, small
# enough that one call never holds the (single-threaded) server for long.
RUN_MAX = 64

__all__ = ["PIPELINE_MAX", "RUN_MAX", "DragonflyStore", "continue_key", "script_keys"]


class DragonflyStore:
    """``ProgressStore`` on Dragonfly or any Redis-protocol server; see the module docstring."""

    def __init__(self, url: str, settings: Settings, policies: Policies = DEFAULT_POLICIES, *,
                 pipeline_max: int = PIPELINE_MAX, run_max: int = RUN_MAX, key_guard: bool = False,
                 journaled: bool = False) -> None:
        if pipeline_max < 1 or run_max < 1:
            raise ValueError("pipeline_max and run_max must be at least 1")
        self._continue_min = str(rules.CONTINUE_MIN_POSITION_MS)
        self._pipeline_max = pipeline_max
        self._run_max = run_max
        self._redis = ScriptedRedis(
            url, settings.store_timeout_seconds, "progress",
            scripts(policies, key_guard), log, on_load=self._check_durability)
        self.last_ping_ms: float | None = None
        self._cluster = True  # until open() asks the server
        self._policy = settings.store_durability
        self._journaled = journaled  # acknowledged updates also go to the local journal (revenge.journal)
        self.durability: Durability | None = None  # as last read from the server

    # --- plumbing (revenge.redis_scripts) ----------------------------------------------------------

    async def open(self) -> None:
        await self._redis.open()
        try:
            info = await self._redis.client().info("cluster")
        except RedisError as exc:
            await self._redis.close()
            raise self._redis.unavailable(exc) from exc
        # Unless the server says it is not a cluster node, calls keep to one slot (always safe).
        self._cluster = info.get("cluster_enabled") != 0

    async def close(self) -> None:
        await self._redis.close()

    async def _eval_many(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run ``(script name, keys, args)`` calls in pipelines of at most ``pipeline_max`` EVALSHAs."""
        results: list[Any] = []
        for start in range(0, len(calls), self._pipeline_max):
            results.extend(await self._redis.eval_pipeline(calls[start:start + self._pipeline_max]))
        return results

    async def _eval_one(self, name: str, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        (reply,) = await self._redis.eval_pipeline([(name, keys, args)])
        return reply

    # --- the contract ------------------------------------------------------------------------------

    async def ping(self) -> None:
        started = time.perf_counter()
        await self._redis.ping()
        self.last_ping_ms = (time.perf_counter() - started) * 1000.0

    async def check(self) -> Durability:
        return await self._check_durability()

    async def _check_durability(self) -> Durability:
        """Read the server's persistence (on open, after a restart, on a probe); ``StoreNotDurable`` when
        ``store_durability`` refuses it. A loss it accepts is logged when first seen."""
        durability = redis_durability(*await self._redis.persistence())
        if self._journaled:
            durability = with_journal(durability)
        previous, self.durability = self.durability, durability
        message = refusal(durability, self._policy, "progress store")
        if message is not None:
            raise StoreNotDurable(message)
        if not durability.durable and durability != previous:
            log.warning("progress store: acknowledged writes may be lost (store_durability = accept_loss): "
                        "%s: %s", durability.server, durability.detail)
        return durability

    async def server_mark(self) -> ServerMark:
        """The server's process and last snapshot (``revenge.journal``), in one round trip."""
        try:
            return await read_server_mark(self._redis.client())
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc

    def _calls(self, updates: Sequence[ProgressUpdate]) -> list[UpdateCall]:
        """The batch in calls of at most ``run_max`` updates, in order. On a cluster a call holds the
        users of one slot only (a cluster refuses calls across slots); elsewhere, any users. A key's
        updates go to calls of its slot in batch order, and the calls run in order: every key sees its
        updates in order."""
        calls: list[UpdateCall] = []
        open_calls: dict[int, UpdateCall] = {}
        for position, u in enumerate(updates):
            slot = key_slot(continue_key(u.user_id, u.item_type).encode()) if self._cluster else 0
            call = open_calls.get(slot)
            if call is None or len(call.positions) >= self._run_max:
                call = open_calls[slot] = UpdateCall()
                calls.append(call)
            call.add(position, u)
        return calls

    async def apply_batch(self, updates: Sequence[ProgressUpdate]) -> list[ProgressState]:
        if not updates:
            return []
        calls = self._calls(updates)
        mode = ("2",) if self._journaled else ()  # replay.timed_update, as replayed
        replies = await self._eval_many([("apply_updates", call.keys, (orjson.dumps(call.updates), *mode))
                                         for call in calls])
        states: list[ProgressState | None] = [None] * len(updates)
        for call, reply in zip(calls, replies, strict=True):
            rows = orjson.loads(reply)
            if len(rows) != len(call.positions):
                raise RuntimeError(f"apply_updates.lua returned {len(rows)} states for {len(call.positions)}")
            for position, row in zip(call.positions, rows, strict=True):
                states[position] = state_of_row(row)
        if any(s is None for s in states):
            raise RuntimeError("apply_updates.lua returned no state")
        return states  # type: ignore[return-value]

    async def get(self, user_id: str, item_id: str) -> ProgressState | None:
        reply = await self._eval_one("read", script_keys(user_id, item_id), ())
        return parse_state(reply)

    async def continue_listening(
        self, user_id: str, item_type: ItemType | None, limit: int, now_ms: int
    ) -> list[ProgressState]:
        types = ITEM_TYPES if item_type is None else (item_type,)
        min_score = now_ms - rules.CONTINUE_MAX_AGE_MS
        client = self._redis.client()
        try:
            # Newest first per type; the sets hold exactly the candidates but for the age test, which
            # the score range applies.
            pipe = client.pipeline(transaction=False)
            for t in types:
                pipe.zrevrangebyscore(continue_key(user_id, t), "+inf", min_score, start=0, num=limit,
                                      withscores=True)
            per_type: list[list[tuple[bytes, float]]] = await pipe.execute()
            entries = {(reply_text(m), int(score)) for rows in per_type for m, score in rows}
            ranked = sorted(entries, key=lambda e: (-e[1], e[0]))
            if len(ranked) >= limit:
                # Ties on the last score are ranked by item id, which the server does not order for
                # us (it gives ties in reverse byte order): fetch every member with that score.
                boundary = ranked[limit - 1][1]
                pipe = client.pipeline(transaction=False)
                for t, rows in zip(types, per_type, strict=True):
                    if len(rows) == limit:
                        pipe.zrangebyscore(continue_key(user_id, t), boundary, boundary)
                for members in await pipe.execute():
                    entries.update((reply_text(m), boundary) for m in members)
                ranked = sorted(entries, key=lambda e: (-e[1], e[0]))
            chosen = [item_id for item_id, _ in ranked[:limit]]
            pipe = client.pipeline(transaction=False)
            for item_id in chosen:
                pipe.hgetall(state_key(user_id, item_id))
            hashes: list[dict[bytes, bytes]] = await pipe.execute() if chosen else []
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        states = [ProgressState.from_hash(h) for h in hashes if b"user_id" in h]
        # The rules have the last word (a state may have changed between the two reads).
        return rules.select_continue(states, item_type, limit, now_ms)

    async def played(self, user_id: str, item_type: ItemType, order: PlayedOrder,
                     limit: int) -> list[PlayedItem]:
        ranked, other = ((recent_key, plays_key) if order == "recent" else (plays_key, recent_key))
        client = self._redis.client()
        try:
            rows: list[tuple[bytes, float]] = await client.zrevrange(ranked(user_id, item_type), 0, limit - 1,
                                                                     withscores=True)
            members = [m for m, _ in rows]
            scores: list[float | None] = (await client.zmscore(other(user_id, item_type), members)
                                          if members else [])
        except RedisError as exc:
            raise self._redis.unavailable(exc) from exc
        found = [(reply_text(m), int(score), int(o or 0)) for (m, score), o in zip(rows, scores, strict=True)]
        found.sort(key=lambda e: (-e[1], -e[2], e[0]))
        if order == "recent":
            return [PlayedItem(i, at, n) for i, at, n in found]
        return [PlayedItem(i, at, n) for i, n, at in found]

    def _op_call(self, op: ProgressOp, replay: bool) -> ScriptCall:
        """The script call of an action: remembered by its id (``op_id``, "" for none) in the state, and
        replayed by ``replay.replay_op`` when ``replay``."""
        keys = script_keys(op.user_id, op.item_id)
        flag = "1" if replay else "0"
        if op.kind == "reset":
            return ("reset", keys, (op.item_id, str(op.now_ms) if op.op_id else "", flag, self._continue_min))
        return ("modify", keys, (op.kind, op.user_id, op.item_id, op.item_type, str(op.duration_ms),
                                 str(op.now_ms), self._continue_min, op.op_id, flag,
                                 str(MAX_OPS_SEEN)))

    async def apply_op(self, op: ProgressOp) -> ProgressState | bool:
        """An action as the user makes it: the state after it, or for a reset whether there was one."""
        if op.kind == "reset":
            return bool(await self._eval_one(*self._op_call(op, replay=False)))
        return await self._modify(op)

    async def _modify(self, op: ProgressOp) -> ProgressState:
        state = parse_state(await self._eval_one(*self._op_call(op, replay=False)))
        if state is None:
            raise RuntimeError("modify.lua returned no state")
        return state

    async def replay(self, entries: Sequence[ProgressUpdate | ProgressOp]) -> None:
        """Re-apply journaled updates and actions, in their order (``replay.timed_update``, ``replay_op``):
        entries the server holds already change nothing. Runs of updates go in calls of ``run_max``, all
        in pipelines of ``pipeline_max``."""
        calls: list[ScriptCall] = []
        run: list[ProgressUpdate] = []
        for entry in [*entries, None]:
            if isinstance(entry, ProgressUpdate):
                run.append(entry)
                continue
            calls += [("apply_updates", call.keys, (orjson.dumps(call.updates), "1"))
                      for call in self._calls(run)]
            run = []
            if entry is not None:
                calls.append(self._op_call(entry, replay=True))
        await self._eval_many(calls)

    async def mark_played(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int, op_id: str = ""
    ) -> ProgressState:
        return await self._modify(ProgressOp("played", user_id, item_id, item_type, duration_ms, now_ms,
                                             op_id))

    async def mark_unplayed(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, now_ms: int, op_id: str = ""
    ) -> ProgressState:
        return await self._modify(ProgressOp("unplayed", user_id, item_id, item_type, duration_ms, now_ms,
                                             op_id))

    async def set_hidden(
        self, user_id: str, item_id: str, item_type: ItemType, duration_ms: int, hidden: bool, now_ms: int,
        op_id: str = ""
    ) -> ProgressState:
        return await self._modify(ProgressOp("hidden" if hidden else "shown", user_id, item_id, item_type,
                                             duration_ms, now_ms, op_id))

    async def reset(self, user_id: str, item_id: str) -> bool:
        return bool(await self._eval_one("reset", script_keys(user_id, item_id), (item_id, "", "0")))
