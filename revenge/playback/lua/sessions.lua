-- Playback sessions of ONE user (revenge.playback.session_store.RedisSessionStore). Mirrors the rules of
-- revenge/playback/sessions.py: plan_start (idle dropped, same device replaced, cap), heartbeat, touch,
-- sweep. One script, the operation in ARGV[1], so the store loads and tracks a single SHA.
--
-- KEYS[1] rv:{user}:s:fixed  hash: session id -> static JSON (written by Python, opaque here)
-- KEYS[2] rv:{user}:s:live   hash: session id -> "<last_active_ms> <position_ms> <state> <item_id> <device_id>"
-- Both keys carry the user's hash tag and are the only keys touched. They expire idle_ms after the
-- last activity of any of the user's sessions, so a user who walks away leaves nothing behind.
--
-- ARGV[1] operation, ARGV[2] now_ms, ARGV[3] idle_ms, then per operation (see each branch).
-- An entry in a reply is {session id, static JSON or '', live text}.

local K_FIXED, K_LIVE = KEYS[1], KEYS[2]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])

local function parse(live)
  local last, pos, state, item, device = string.match(live, '^(%d+) (%d+) (%a+) (%S+) (%S+)$')
  if last == nil then return nil end
  return {last = last, pos = pos, state = state, item = item, device = device}
end

local function format(s)
  return s.last .. ' ' .. s.pos .. ' ' .. s.state .. ' ' .. s.item .. ' ' .. s.device
end

local function alive(s)
  if not s then return false end
  return tonumber(s.last) + idle > now
end

local function entry(id, live)
  return {id, redis.call('HGET', K_FIXED, id) or '', live}
end

local function drop(id)
  redis.call('HDEL', K_FIXED, id)
  redis.call('HDEL', K_LIVE, id)
end

-- Activity: the keys live until idle_ms from now (never shortened: every deadline is <= now + idle).
local function extend()
  if redis.call('PTTL', K_LIVE) < idle then
    redis.call('PEXPIRE', K_LIVE, idle)
    redis.call('PEXPIRE', K_FIXED, idle)
  end
end

-- The later of the stored activity time and now (a clock a little behind on another instance must not
-- move it back).
local function later(last)
  if tonumber(last) > now then return last end
  return ARGV[2]
end

if op == 'start' then
  -- ARGV[4] session id, ARGV[5] static JSON, ARGV[6] live text, ARGV[7] device id, ARGV[8] cap.
  -- Reply: {accepted 0|1, expired entries, replaced entries}.
  local device, cap = ARGV[7], tonumber(ARGV[8])
  local flat = redis.call('HGETALL', K_LIVE)
  local expired, replaced, kept = {}, {}, 0
  for i = 1, #flat, 2 do
    local s = parse(flat[i + 1])
    if not alive(s) then
      table.insert(expired, entry(flat[i], flat[i + 1]))
    elseif s.device == device then
      table.insert(replaced, entry(flat[i], flat[i + 1]))
    else
      kept = kept + 1
    end
  end
  for _, e in ipairs(expired) do drop(e[1]) end
  if kept >= cap then
    return {0, expired, {}}
  end
  for _, e in ipairs(replaced) do drop(e[1]) end
  redis.call('HSET', K_FIXED, ARGV[4], ARGV[5])
  redis.call('HSET', K_LIVE, ARGV[4], ARGV[6])
  extend()
  return {1, expired, replaced}

elseif op == 'get' then
  -- ARGV[4] session id. Reply: the entry, or {} when there is no live session of that id.
  local live = redis.call('HGET', K_LIVE, ARGV[4])
  if not live or not alive(parse(live)) then return {} end
  return entry(ARGV[4], live)

elseif op == 'heartbeat' then
  -- ARGV[4] session id, ARGV[5] position_ms, ARGV[6] player state. Reply: the new entry, or {}.
  local live = redis.call('HGET', K_LIVE, ARGV[4])
  local s = live and parse(live)
  if not alive(s) then return {} end
  s.last, s.pos, s.state = later(s.last), ARGV[5], ARGV[6]
  live = format(s)
  redis.call('HSET', K_LIVE, ARGV[4], live)
  extend()
  return entry(ARGV[4], live)

elseif op == 'touch_item' then
  -- ARGV[4] item id. Refreshes every live session of the user on that item. Reply: their entries.
  local flat = redis.call('HGETALL', K_LIVE)
  local touched = {}
  for i = 1, #flat, 2 do
    local s = parse(flat[i + 1])
    if alive(s) and s.item == ARGV[4] then
      s.last = later(s.last)
      local live = format(s)
      redis.call('HSET', K_LIVE, flat[i], live)
      table.insert(touched, entry(flat[i], live))
    end
  end
  if #touched > 0 then extend() end
  return touched

elseif op == 'end' then
  -- ARGV[4] session id. Reply: the entry it had (even if idle), or {}.
  local live = redis.call('HGET', K_LIVE, ARGV[4])
  if not live then return {} end
  local e = entry(ARGV[4], live)
  drop(ARGV[4])
  return e

elseif op == 'sweep' then
  -- Drops the idle sessions. Reply: {live entries, idle entries}.
  local flat = redis.call('HGETALL', K_LIVE)
  local live, idled = {}, {}
  for i = 1, #flat, 2 do
    if alive(parse(flat[i + 1])) then
      table.insert(live, entry(flat[i], flat[i + 1]))
    else
      table.insert(idled, entry(flat[i], flat[i + 1]))
    end
  end
  for _, e in ipairs(idled) do drop(e[1]) end
  return {live, idled}
end

return redis.error_reply('sessions.lua: unknown operation ' .. tostring(op))
