-- Shared by every progress script: prepended to each one (after the field table, see below) when the
-- store loads them.
--
-- KEYS, in every script: groups, one per user the call is about (the write script's calls may carry
-- several users, the others one), each made of the user's sorted sets, one of each per item type:
-- continue-listening candidates rv:{user}:c:<type>, and every item played, scored by last_played_at
-- (rv:{user}:r:<type>) and by play_count (rv:{user}:n:<type>, those played at least once); then,
-- per item of that user the call is about, its state hash
-- rv:{user}:p:<item> and its devices hash rv:{user}:d:<item>. Items are numbered from 0 across the
-- groups, in order. Every key a script touches is one of these (Dragonfly refuses undeclared keys). All
-- keys of a group carry the user's {user} hash tag. On a cluster a call has several users only when they
-- share a slot (the store sees to it), so a call's keys share one slot.
--
-- A state is a Lua table with the fields of revenge.progress.model.ProgressState: integers as numbers,
-- booleans as booleans, None as nil, and playback_rate as the text the client's float was sent as (so it
-- round-trips exactly). Redis' Lua numbers are doubles: exact for every integer below 2^53, and the float
-- comparisons below are the same IEEE operations Python performs in rules.py.

-- 0-based item index -> {state key, devices key, its user's sets: kind ('c', 'r', 'n') -> item type -> key}
local ITEMS = {}
do
  local sets, in_sets, i, n_items = {}, false, 1, 0
  while KEYS[i] do
    -- A set's kind and item type are the key's last two parts (item ids have no colon).
    local kind, item_type = string.match(KEYS[i], ':([crn]):([^:]+)$')
    if kind then
      if not in_sets then
        sets, in_sets = {c = {}, r = {}, n = {}}, true  -- a new user's group
      end
      sets[kind][item_type] = KEYS[i]
      i = i + 1
    else
      in_sets = false
      ITEMS[n_items] = {KEYS[i], KEYS[i + 1], sets}
      n_items = n_items + 1
      i = i + 2
    end
  end
end

-- The item the functions below work on: its state and devices hashes and its user's sets: continue
-- candidates (ZSETS), played by time (RECENT) and by count (PLAYS), each item type -> key (the first
-- item of KEYS, until a script selects another one).
local K_STATE, K_DEVICES, ZSETS, RECENT, PLAYS
local function select_item(n)  -- n: 0-based index of the item
  local item = ITEMS[n]
  K_STATE, K_DEVICES = item[1], item[2]
  ZSETS, RECENT, PLAYS = item[3].c, item[3].r, item[3].n
end
select_item(0)

-- FIELD_NAMES (ProgressState's fields in its order), FIELD_KINDS (one letter each: s = string,
-- i = integer, o = optional integer, b = boolean, f = float kept as text) and ROW_FORMAT (the format of
-- state_row_json) are written ahead of this text by the store from revenge.progress.model
-- (revenge/progress/scripts.py), the one definition of the fields.
local KIND_I, KIND_O, KIND_B = string.byte('i'), string.byte('o'), string.byte('b')

local function int_text(x)
  return string.format('%d', x)
end

local function new_state(user_id, item_id, item_type, duration_ms)
  return {
    user_id = user_id, item_id = item_id, item_type = item_type, duration_ms = duration_ms,
    position_ms = 0, completed = false, play_count = 0, completed_count = 0, playback_rate = '1.0',
    hidden = false, version = 0, device_id = '', event_ts_ms = 0, updated_ms = 0, listened_ms = 0,
    listen_counted = false,
  }
end

-- The stored state, or nil when there is none.
local function load_state()
  local values = redis.call('HMGET', K_STATE, unpack(FIELD_NAMES))
  if not values[1] then
    return nil
  end
  local s = {}
  for i = 1, #FIELD_NAMES do
    local text = values[i]
    if text then
      local kind = string.byte(FIELD_KINDS, i)
      if kind == KIND_I or kind == KIND_O then
        s[FIELD_NAMES[i]] = tonumber(text)
      elseif kind == KIND_B then
        s[FIELD_NAMES[i]] = (text == '1')
      else
        s[FIELD_NAMES[i]] = text
      end
    end
  end
  return s
end

local function copy_state(s)
  local out = {}
  for name, value in pairs(s) do
    out[name] = value
  end
  return out
end

-- A field's value as stored in the hash; i is the field's index in FIELD_NAMES.
local function field_text(i, value)
  local kind = string.byte(FIELD_KINDS, i)
  if kind == KIND_I or kind == KIND_O then
    return int_text(value)
  elseif kind == KIND_B then
    return value and '1' or '0'
  end
  return value
end

-- The state as a flat {name, text, ...} list (nil fields left out), the shape HSET and Python want.
local function encode_state(s)
  local out = {}
  local n = 0
  for i = 1, #FIELD_NAMES do
    local value = s[FIELD_NAMES[i]]
    if value ~= nil then
      out[n + 1], out[n + 2] = FIELD_NAMES[i], field_text(i, value)
      n = n + 2
    end
  end
  return out
end

local function opt_int_json(value)
  if value == nil then
    return 'null'
  end
  return int_text(value)
end

-- The state as the JSON text of an array of its values in FIELD_NAMES order (ProgressState's own field
-- order), typed: integers written with %d (cjson would round them to 14 significant digits), booleans,
-- strings, null for nil, and playback_rate as a string (its exact text). The write path's reply: the
-- client builds the state straight from it. The arguments follow FIELD_NAMES
-- (tests/integration/test_progress_redis.py checks it).
local function state_row_json(s)
  return string.format(ROW_FORMAT, cjson.encode(s.user_id), cjson.encode(s.item_id),
    cjson.encode(s.item_type), s.duration_ms, s.position_ms, tostring(s.completed), s.play_count,
    s.completed_count, opt_int_json(s.first_played_at), opt_int_json(s.last_played_at),
    opt_int_json(s.completed_at), cjson.encode(s.playback_rate), tostring(s.hidden), s.version,
    cjson.encode(s.device_id), s.event_ts_ms, s.updated_ms, opt_int_json(s.listen_started_at),
    s.listened_ms, tostring(s.listen_counted))
end

local function is_continue_candidate(s, min_position_ms)
  -- rules.is_continue_candidate without the age test: that one depends on the reader's clock, so it is
  -- applied when reading (the sorted set's score is last_played_at).
  return s.position_ms >= min_position_ms and not s.completed and not s.hidden
    and s.last_played_at ~= nil
end

-- Write the fields that changed (all of them for a new state), drop optional fields that became None,
-- and keep the continue-listening sets in step. Only the changed fields are turned into text and sent.
local function save_state(old, s, min_position_ms)
  if old == nil then
    redis.call('HSET', K_STATE, unpack(encode_state(s)))
  else
    local changed, n = {}, 0
    for i = 1, #FIELD_NAMES do
      local name = FIELD_NAMES[i]
      local value = s[name]
      if value ~= old[name] then
        if value == nil then
          redis.call('HDEL', K_STATE, name)
        else
          changed[n + 1], changed[n + 2] = name, field_text(i, value)
          n = n + 2
        end
      end
    end
    if n > 0 then
      redis.call('HSET', K_STATE, unpack(changed))
    end
  end
  local was = old ~= nil and is_continue_candidate(old, min_position_ms)
  local is = is_continue_candidate(s, min_position_ms)
  if was and (old.item_type ~= s.item_type or not is) then
    redis.call('ZREM', ZSETS[old.item_type], s.item_id)
  end
  if is and not (was and old.item_type == s.item_type and old.last_played_at == s.last_played_at) then
    redis.call('ZADD', ZSETS[s.item_type], int_text(s.last_played_at), s.item_id)
  end
  -- The played sets: written whenever the state is (ZADD of an unchanged score costs little), so a
  -- state stored before these sets existed joins them on its next write.
  if old ~= nil and old.item_type ~= s.item_type then
    redis.call('ZREM', RECENT[old.item_type], s.item_id)
    redis.call('ZREM', PLAYS[old.item_type], s.item_id)
  end
  if s.last_played_at ~= nil then
    redis.call('ZADD', RECENT[s.item_type], int_text(s.last_played_at), s.item_id)
  else
    redis.call('ZREM', RECENT[s.item_type], s.item_id)
  end
  if s.play_count > 0 then
    redis.call('ZADD', PLAYS[s.item_type], int_text(s.play_count), s.item_id)
  else
    redis.call('ZREM', PLAYS[s.item_type], s.item_id)
  end
end

-- What the state scripts return: one JSON text [state fields, device fields], both flat name/value
-- lists of strings ({} when empty). One bulk string instead of ~40 reply elements per call keeps the
-- client's parsing cost per update small; every value is already text, so nothing loses precision.
local function reply(flat, device_flat)
  return cjson.encode({flat, device_flat or redis.call('HGETALL', K_DEVICES)})
end

-- replay.Seen: what a state remembers of the actions applied to it, in its hash beside ProgressState's
-- fields: 'ops' (the ids of the last ones, space-separated, in the order applied), 'reset_ms' (its
-- last reset; left as a tombstone when the reset deletes the rest) and 'hidden_ms' (when it was last
-- hidden). Written only by journaled stores. Returns ops, reset_ms, hidden_ms.
local function load_seen()
  local found = redis.call('HMGET', K_STATE, 'ops', 'reset_ms', 'hidden_ms')
  local ops = {}
  if found[1] then
    for id in string.gmatch(found[1], '%S+') do
      ops[#ops + 1] = id
    end
  end
  return ops, found[2] and tonumber(found[2]) or 0, found[3] and tonumber(found[3]) or 0
end

-- rules.op_time: an action's id is "<now_ms>-<nonce>".
local function op_time(id)
  return tonumber(string.match(id, '^(%d+)'))
end
