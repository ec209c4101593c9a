"""The text of the Lua scripts the Dragonfly/Redis progress store runs (``lua/*.lua``), and what Python
writes ahead of it: the state's field table (from ``model.STATE_FIELD_KINDS``) in every script, and the
rules' table (from the policies and ``rules``' constants) in apply_updates.lua, so that Python stays the
single source of the fields and of the numbers.
"""

from __future__ import annotations

import math
import re
from importlib import resources

from revenge.library.model import ITEM_TYPES
from revenge.progress import rules
from revenge.progress.model import MAX_DEVICES_PER_ITEM, STATE_FIELD_KINDS, CompletionPolicy, Policies
from revenge.redis_scripts import LuaScript, key_guard_lua

# Makes a script touching a key it did not declare fail, as on Dragonfly (the tests turn it on).
KEY_GUARD_LUA = key_guard_lua({"HGETALL": 1, "HMGET": 1, "HGET": 1, "HSET": 1, "HDEL": 1, "HLEN": 1,
                               "ZADD": 1, "ZREM": 1, "DEL": -1})


def lua_source(name: str) -> str:
    """The text of ``lua/<name>.lua`` as shipped in the package."""
    return resources.files("revenge.progress").joinpath("lua", f"{name}.lua").read_text()


def script(name: str, key_guard: bool, prelude: str = "") -> LuaScript:
    """``lua/<name>.lua`` after ``lua/common.lua``, after the field table and ``prelude`` (and the key
    guard when asked)."""
    return LuaScript.of(name, (KEY_GUARD_LUA if key_guard else "") + fields_lua() + prelude
                        + lua_source("common") + "\n" + lua_source(name))


# How state_row_json (lua/common.lua) writes a field of each kind into its JSON row.
_ROW_FORMAT_OF_KIND = {"s": "%s", "i": "%d", "o": "%s", "b": "%s", "f": "%s"}


def fields_lua() -> str:
    """The Lua statements common.lua starts from: ``FIELD_NAMES``, ``FIELD_KINDS`` and ``ROW_FORMAT``,
    written from ``model.STATE_FIELD_KINDS`` so the scripts and Python cannot disagree on the fields."""
    names = ", ".join(f"'{name}'" for name in STATE_FIELD_KINDS)
    kinds = "".join(STATE_FIELD_KINDS.values())
    row = ",".join(_ROW_FORMAT_OF_KIND[kind] for kind in kinds)
    return f"local FIELD_NAMES = {{{names}}}\nlocal FIELD_KINDS = '{kinds}'\nlocal ROW_FORMAT = '[{row}]'\n"


def rules_lua(policies: Policies) -> str:
    """The Lua statement apply_updates.lua starts with: ``RULES``, item type → its policy and the rules'
    constants, as a table literal. Written into the script's text (so its SHA depends on the policies)
    rather than passed with every call, which would make each call decode it."""
    return f"local RULES = {_lua_literal({t: _type_rules(policies[t]) for t in ITEM_TYPES})}\n"


def _type_rules(policy: CompletionPolicy) -> dict[str, object]:
    return {
        "mode": policy.mode,
        "complete_percent": policy.complete_percent,  # None (not used) leaves the field nil
        "complete_remaining_ms": policy.complete_remaining_ms,
        "play_percent": policy.play_percent,
        "play_heard_ms": policy.play_heard_ms,
        "play_min_duration_ms": policy.play_min_duration_ms,
        "listen_restart_window_ms": rules.LISTEN_RESTART_WINDOW_MS,
        "heard_slack_ms": rules.HEARD_SLACK_MS,
        "max_devices": MAX_DEVICES_PER_ITEM,
        "continue_min_position_ms": rules.CONTINUE_MIN_POSITION_MS,
        "replay": dict.fromkeys(sorted(rules.REPLAY_EVENTS), True),  # a set: event -> true
    }


_LUA_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")


def _lua_literal(value: object) -> str:
    """A Lua literal for the plain values of ``_type_rules``: tables with identifier keys (None values left
    out), booleans, finite numbers (repr reads back as the same double), identifier-like strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, str) and _LUA_NAME_RE.fullmatch(value):
        return f"'{value}'"
    if isinstance(value, dict):
        fields = []
        for key, item in value.items():
            if not (isinstance(key, str) and _LUA_NAME_RE.fullmatch(key)):
                raise ValueError(f"not a Lua table key: {key!r}")
            if item is not None:
                fields.append(f"{key} = {_lua_literal(item)}")
        return "{" + ", ".join(fields) + "}"
    raise ValueError(f"no Lua literal for {value!r}")


def scripts(policies: Policies, key_guard: bool) -> list[LuaScript]:
    """Every script of the progress store."""
    return [script("apply_updates", key_guard, rules_lua(policies)),
            *(script(name, key_guard) for name in ("modify", "read", "reset"))]
