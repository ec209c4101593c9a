-- rules.apply_update, atomically on one (user, item). Keep in step with revenge/progress/rules.py:
-- tests/integration/test_progress_redis_vs_rules.py compares the two on random update streams.
--
-- ARGV[1]: the update, a JSON object with the fields of ProgressUpdate (playback_rate as the text of
-- the client's float, so it is stored exactly as Python would store it).
-- ARGV[2]: the rules for the item's type, a JSON object: the CompletionPolicy fields (mode,
-- complete_percent, complete_remaining_ms (null = not used), play_percent, play_heard_ms,
-- play_min_duration_ms) and the rules' constants (listen_restart_window_ms, heard_slack_ms,
-- max_devices, continue_min_position_ms, replay_events). Nothing is hard-coded here.

local u = cjson.decode(ARGV[1])
local p = cjson.decode(ARGV[2])
local user_id, item_id, item_type = u.user_id, u.item_id, u.item_type
local duration_ms, position_ms = u.duration_ms, u.position_ms
local event, device_id = u.event, u.device_id
local ts, received_ms = u.event_ts_ms, u.received_ms
local rate_text = u.playback_rate
local rate = tonumber(rate_text)
local mode = p.mode
local complete_percent = opt(p.complete_percent)
local complete_remaining_ms = opt(p.complete_remaining_ms)
local play_percent, play_heard_ms = p.play_percent, p.play_heard_ms
local play_min_duration_ms = p.play_min_duration_ms
local restart_window_ms, heard_slack_ms = p.listen_restart_window_ms, p.heard_slack_ms
local max_devices, continue_min_position_ms = p.max_devices, p.continue_min_position_ms
local replay_events = {}
for _, name in ipairs(p.replay_events) do
  replay_events[name] = true
end

-- Python's str < str on device ids compares code points = UTF-8 bytes; Lua's '<' uses the server's
-- locale (strcoll), so compare bytes explicitly.
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- rules._with_device: the device's row moves only to a newer (or equal) event time; past max_devices
-- rows the one with the oldest event (then smallest id) is dropped.
local function update_device()
  local row = redis.call('HGET', K_DEVICES, device_id)
  if row then
    local row_ts = tonumber(string.match(row, '^[^:]*:([^:]*):'))
    if ts >= row_ts then
      redis.call('HSET', K_DEVICES, device_id,
        int_text(position_ms) .. ':' .. int_text(ts) .. ':' .. int_text(received_ms))
    end
    return
  end
  redis.call('HSET', K_DEVICES, device_id,
    int_text(position_ms) .. ':' .. int_text(ts) .. ':' .. int_text(received_ms))
  if redis.call('HLEN', K_DEVICES) > max_devices then
    local flat = redis.call('HGETALL', K_DEVICES)
    local oldest, oldest_ts = nil, nil
    for i = 1, #flat, 2 do
      local d_ts = tonumber(string.match(flat[i + 1], '^[^:]*:([^:]*):'))
      if oldest == nil or d_ts < oldest_ts or (d_ts == oldest_ts and bytes_less(flat[i], oldest)) then
        oldest, oldest_ts = flat[i], d_ts
      end
    end
    redis.call('HDEL', K_DEVICES, oldest)
  end
end

local function in_completion_zone(position, duration)
  if mode ~= 'position' or duration <= 0 or position <= 0 then
    return false
  end
  if complete_remaining_ms ~= nil and duration - position <= complete_remaining_ms then
    return true
  end
  return complete_percent ~= nil and position * 100 >= complete_percent * duration
end

local function counts_as_play(listened, duration)
  if duration < play_min_duration_ms then
    return false
  end
  return listened * 100 >= play_percent * duration or listened >= play_heard_ms
end

local function heard_between(prev_position, prev_ts, position, event_ts, playback_rate)
  local advance = position - prev_position
  if advance <= 0 then
    return 0
  end
  local elapsed = math.max(0, event_ts - prev_ts)
  return math.min(advance, math.floor(elapsed * playback_rate) + heard_slack_ms)
end

local function jumped_to_start(prev_position, position)
  return position <= restart_window_ms and prev_position - position >= restart_window_ms
end

local old = load_state()
local s = old and copy_state(old) or new_state(user_id, item_id, item_type, duration_ms)
local prev_position, prev_ts = s.position_ms, s.event_ts_ms

s.item_type = item_type
s.duration_ms = duration_ms
s.version = s.version + 1
s.updated_ms = received_ms
s.first_played_at = (s.first_played_at == nil) and ts or math.min(s.first_played_at, ts)
s.last_played_at = (s.last_played_at == nil) and ts or math.max(s.last_played_at, ts)
update_device()

if old == nil or ts >= prev_ts then
  if mode == 'position' then
    local zone = in_completion_zone(position_ms, duration_ms)
    if zone and not s.completed then
      s.completed, s.completed_at = true, ts
      s.completed_count = s.completed_count + 1
      s.play_count = s.play_count + 1
    elseif not zone and s.completed and replay_events[event] then
      s.completed = false
    end
  else
    if s.listen_started_at == nil or event == 'start' or jumped_to_start(prev_position, position_ms) then
      s.listen_started_at, s.listened_ms, s.listen_counted, s.completed = ts, 0, false, false
    elseif event ~= 'seek' then
      s.listened_ms = s.listened_ms + heard_between(prev_position, prev_ts, position_ms, ts, rate)
    end
    if not s.listen_counted and counts_as_play(s.listened_ms, duration_ms) then
      s.listen_counted, s.completed, s.completed_at = true, true, ts
      s.play_count = s.play_count + 1
      s.completed_count = s.completed_count + 1
    end
  end
  s.position_ms = position_ms
  s.device_id = device_id
  s.event_ts_ms = ts
  s.playback_rate = rate_text
  if event == 'start' then
    s.hidden = false
  end
end

return reply(save_state(old, s, continue_min_position_ms))
