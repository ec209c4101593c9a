"""The progress state's fields have one definition (``model.STATE_FIELD_KINDS``, from the dataclass): the
Lua scripts' field table is written from it, and what the Lua still spells out by hand (the row encoder's
arguments, a new state's defaults) is checked against it here."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from revenge.progress.model import STATE_FIELD_KINDS, STATE_HASH_FIELDS, ProgressState
from revenge.progress.scripts import fields_lua

COMMON_LUA = (Path(__file__).resolve().parents[2] / "revenge" / "progress" / "lua" / "common.lua").read_text()

_PYTHON_TYPE_OF_KIND = {"s": str, "i": int, "o": int, "b": bool, "f": float}


def _full_state() -> ProgressState:
    """A state with every optional field set, so that each value's type shows."""
    return ProgressState("1", "i" * 16, "track", 1000, position_ms=5, completed=True, play_count=1,
                         completed_count=1, first_played_at=1, last_played_at=2, completed_at=3,
                         playback_rate=1.5, hidden=True, version=4, device_id="phone", event_ts_ms=2,
                         updated_ms=2, listen_started_at=1, listened_ms=7, listen_counted=True)


def test_kinds_are_the_dataclass_fields_and_their_types() -> None:
    assert [f.name for f in dataclasses.fields(ProgressState)] == [*STATE_HASH_FIELDS, "devices"]
    state = _full_state()
    for name, kind in STATE_FIELD_KINDS.items():
        assert type(getattr(state, name)) is _PYTHON_TYPE_OF_KIND[kind], name
    optional = {f.name for f in dataclasses.fields(ProgressState) if f.default is None}
    assert {name for name, kind in STATE_FIELD_KINDS.items() if kind == "o"} == optional


def test_the_lua_field_table_is_written_from_the_model() -> None:
    text = fields_lua()
    names = re.search(r"local FIELD_NAMES = \{([^}]*)\}", text)
    kinds = re.search(r"local FIELD_KINDS = '(\w+)'", text)
    row = re.search(r"local ROW_FORMAT = '\[([^\]]*)\]'", text)
    assert names and kinds and row
    assert re.findall(r"'(\w+)'", names.group(1)) == list(STATE_HASH_FIELDS)
    assert kinds.group(1) == "".join(STATE_FIELD_KINDS.values())
    assert row.group(1).split(",") == ["%d" if k == "i" else "%s" for k in STATE_FIELD_KINDS.values()]
    # common.lua no longer carries a copy of its own.
    assert not re.search(r"local (FIELD_NAMES|FIELD_KINDS|ROW_FORMAT)\s*=", COMMON_LUA)


def test_the_row_encoder_follows_the_field_order_and_kinds() -> None:
    body = COMMON_LUA[COMMON_LUA.index("local function state_row_json(s)"):]
    body = body[:body.index("\nend\n")]
    call = body[body.index("string.format(ROW_FORMAT,") + len("string.format(ROW_FORMAT,"):]
    args = [a.strip() for a in call.rstrip().removesuffix(")").split(",")]
    wrapper_of_kind = {"s": "cjson.encode({})", "f": "cjson.encode({})", "i": "{}",
                       "o": "opt_int_json({})", "b": "tostring({})"}
    assert args == [wrapper_of_kind[kind].format(f"s.{name}") for name, kind in STATE_FIELD_KINDS.items()]


def test_a_new_lua_state_has_the_dataclass_defaults() -> None:
    body = COMMON_LUA[COMMON_LUA.index("local function new_state("):]
    table = body[body.index("return {") + len("return {"):body.index("}")]
    pairs = dict(re.findall(r"(\w+) = ([^,\n]+)", table))
    given = ("user_id", "item_id", "item_type", "duration_ms")
    assert all(pairs.pop(name) == name for name in given)
    expected = {}
    for f in dataclasses.fields(ProgressState):
        if f.name in given or f.name == "devices" or f.default is None:
            continue
        value = f.default
        kind = STATE_FIELD_KINDS[f.name]
        expected[f.name] = ("true" if value else "false") if kind == "b" else \
            f"'{value}'" if kind in "sf" else str(value)
    assert pairs == expected
