-- Shared by every progress script: prepended to each one when the store loads them.
--
-- KEYS, in every script: KEYS[1] the state hash rv:{user}:p:<item>, KEYS[2] the devices hash
-- rv:{user}:d:<item>, KEYS[3..] one continue-listening sorted set rv:{user}:c:<type> per item type.
-- Every key a script touches is one of these (Dragonfly refuses undeclared keys); they all carry the
-- same {user} hash tag, so they share one cluster slot.
--
-- A state is a Lua table with the fields of revenge.progress.model.ProgressState: integers as numbers,
-- booleans as booleans, None as nil, and playback_rate as the text the client's float was sent as (so it
-- round-trips exactly). Redis' Lua numbers are doubles: exact for every integer below 2^53, and the float
-- comparisons below are the same IEEE operations Python performs in rules.py.

local K_STATE = KEYS[1]
local K_DEVICES = KEYS[2]
local ZSETS = {}
for i = 3, #KEYS do
  -- The item type is the key's suffix after ":c:".
  local item_type = string.match(KEYS[i], ':c:([^:]+)$')
  ZSETS[item_type] = KEYS[i]
end

-- name, kind: s = string, i = integer, o = optional integer, b = boolean, f = float kept as text
local FIELDS = {
  {'user_id', 's'}, {'item_id', 's'}, {'item_type', 's'}, {'duration_ms', 'i'}, {'position_ms', 'i'},
  {'completed', 'b'}, {'play_count', 'i'}, {'completed_count', 'i'}, {'first_played_at', 'o'},
  {'last_played_at', 'o'}, {'completed_at', 'o'}, {'playback_rate', 'f'}, {'hidden', 'b'},
  {'version', 'i'}, {'device_id', 's'}, {'event_ts_ms', 'i'}, {'updated_ms', 'i'},
  {'listen_started_at', 'o'}, {'listened_ms', 'i'}, {'listen_counted', 'b'},
}

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
  local flat = redis.call('HGETALL', K_STATE)
  if #flat == 0 then
    return nil
  end
  local raw = {}
  for i = 1, #flat, 2 do
    raw[flat[i]] = flat[i + 1]
  end
  local s = {}
  for _, f in ipairs(FIELDS) do
    local name, kind, text = f[1], f[2], raw[f[1]]
    if text ~= nil then
      if kind == 'i' or kind == 'o' then
        s[name] = tonumber(text)
      elseif kind == 'b' then
        s[name] = (text == '1')
      else
        s[name] = text
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

-- The state as a flat {name, text, ...} list (nil fields left out), the shape HSET and Python want.
local function encode_state(s)
  local out = {}
  for _, f in ipairs(FIELDS) do
    local name, kind, value = f[1], f[2], s[f[1]]
    if value ~= nil then
      out[#out + 1] = name
      if kind == 'i' or kind == 'o' then
        out[#out + 1] = int_text(value)
      elseif kind == 'b' then
        out[#out + 1] = value and '1' or '0'
      else
        out[#out + 1] = value
      end
    end
  end
  return out
end

local function is_continue_candidate(s, min_position_ms)
  -- rules.is_continue_candidate without the age test: that one depends on the reader's clock, so it is
  -- applied when reading (the sorted set's score is last_played_at).
  return s.position_ms >= min_position_ms and not s.completed and not s.hidden
    and s.last_played_at ~= nil
end

-- Write the state, drop optional fields that became None, and keep the continue-listening sets in step.
local function save_state(old, s, min_position_ms)
  local flat = encode_state(s)
  redis.call('HSET', K_STATE, unpack(flat))
  if old ~= nil then
    for _, f in ipairs(FIELDS) do
      if f[2] == 'o' and old[f[1]] ~= nil and s[f[1]] == nil then
        redis.call('HDEL', K_STATE, f[1])
      end
    end
  end
  local was = old ~= nil and is_continue_candidate(old, min_position_ms)
  if was and (old.item_type ~= s.item_type or not is_continue_candidate(s, min_position_ms)) then
    redis.call('ZREM', ZSETS[old.item_type], s.item_id)
  end
  if is_continue_candidate(s, min_position_ms) then
    redis.call('ZADD', ZSETS[s.item_type], int_text(s.last_played_at), s.item_id)
  end
  return flat
end

-- What every script returns: {state fields, device fields}, both flat name/value lists.
local function reply(flat)
  return {flat, redis.call('HGETALL', K_DEVICES)}
end
