-- rules.apply_update for a run of updates, of one user or several, in order, atomically. Keep in step
-- with revenge/progress/rules.py: tests/integration/test_progress_redis_vs_rules.py compares the two on
-- random update streams.
--
-- One call takes up to the store's run_max updates of any users (on a cluster, of the users of one slot),
-- so that the per-call costs are paid once per run, and an item updated several times in the run is read
-- and written once. Every item's keys are in KEYS, grouped by user (see common.lua).
--
-- ARGV[1]: JSON array of the updates: objects with the fields of ProgressUpdate (playback_rate as the
--   text of the client's float, so it is stored exactly as Python would) and `item`, the 0-based index
--   of the item's key pair in KEYS.
-- RULES (a table the store writes ahead of this text, from the policies: revenge/progress/scripts.py):
--   item type -> the CompletionPolicy fields (mode, complete_percent, complete_remaining_ms (nil = not
--   used), play_percent, play_heard_ms, play_min_duration_ms) and the rules' constants
--   (listen_restart_window_ms, heard_slack_ms, max_devices, continue_min_position_ms, and replay: the
--   set of replay events). Nothing is hard-coded here.
-- Returns the JSON array, one entry per update, of the state right after it as state_row_json writes it
-- (common.lua). No device rows: a write's answer does not carry them (the read script gives them), so
-- neither side pays per row.

-- ARGV[2]: '1' when the updates are replayed from a journal, '2' when a journaled store makes them: both
--   are replay.timed_update (an update received at or before the state's last reset is ignored; a
--   start shows the item only when it is newer than the hidden flag's last change, hidden_ms, and then
--   records its time there).

local updates = cjson.decode(ARGV[1])
local replaying = ARGV[2] == '1'
local timed = replaying or ARGV[2] == '2'

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

local function device_ts(row)
  return tonumber(string.match(row, '^[^:]*:([^:]*):'))
end

-- rules._with_device on the flat {id, row, ...} list of an item's device rows: the device's row moves
-- only to a newer (or equal) event time; past max_devices rows the one with the oldest event (then
-- smallest id) is dropped. `dirty` collects the ids of the rows that changed or went.
local function update_device(devices, dirty, u, p)
  local row = int_text(u.position_ms) .. ':' .. int_text(u.event_ts_ms) .. ':' .. int_text(u.received_ms)
  for i = 1, #devices, 2 do
    if devices[i] == u.device_id then
      if u.event_ts_ms >= device_ts(devices[i + 1]) then
        devices[i + 1] = row
        dirty[u.device_id] = true
      end
      return
    end
  end
  devices[#devices + 1] = u.device_id
  devices[#devices + 1] = row
  dirty[u.device_id] = true
  if #devices / 2 > p.max_devices then
    local oldest, oldest_ts = nil, nil
    for i = 1, #devices, 2 do
      local d_ts = device_ts(devices[i + 1])
      if oldest == nil or d_ts < oldest_ts
          or (d_ts == oldest_ts and bytes_less(devices[i], devices[oldest])) then
        oldest, oldest_ts = i, d_ts
      end
    end
    dirty[devices[oldest]] = true
    table.remove(devices, oldest)
    table.remove(devices, oldest)
  end
end

local function in_completion_zone(position, duration, p)
  if p.mode ~= 'position' or duration <= 0 or position <= 0 then
    return false
  end
  if p.complete_remaining_ms ~= nil and duration - position <= p.complete_remaining_ms then
    return true
  end
  return p.complete_percent ~= nil and position * 100 >= p.complete_percent * duration
end

local function counts_as_play(listened, duration, p)
  if duration < p.play_min_duration_ms then
    return false
  end
  return listened * 100 >= p.play_percent * duration or listened >= p.play_heard_ms
end

local function heard_between(prev_position, prev_ts, position, event_ts, playback_rate, p)
  local advance = position - prev_position
  if advance <= 0 then
    return 0
  end
  local elapsed = math.max(0, event_ts - prev_ts)
  return math.min(advance, math.floor(elapsed * playback_rate) + p.heard_slack_ms)
end

local function jumped_to_start(prev_position, position, p)
  return position <= p.listen_restart_window_ms and prev_position - position >= p.listen_restart_window_ms
end

-- rules.apply_update: `s` is the state before (nil for none); returns the state after (s itself, changed).
local function apply_update(s, u, p)
  local ts = u.event_ts_ms
  local fresh = s == nil
  if fresh then
    s = new_state(u.user_id, u.item_id, u.item_type, u.duration_ms)
  end
  local prev_position, prev_ts = s.position_ms, s.event_ts_ms
  s.item_type = u.item_type
  s.duration_ms = u.duration_ms
  s.version = s.version + 1
  s.updated_ms = math.max(s.updated_ms, u.received_ms)  -- never back: a replayed older entry
  s.first_played_at = (s.first_played_at == nil) and ts or math.min(s.first_played_at, ts)
  s.last_played_at = (s.last_played_at == nil) and ts or math.max(s.last_played_at, ts)
  if not fresh and ts < prev_ts then
    return s
  end
  local position, event = u.position_ms, u.event
  if p.mode == 'position' then
    local zone = in_completion_zone(position, u.duration_ms, p)
    if zone and not s.completed then
      s.completed, s.completed_at = true, ts
      s.completed_count = s.completed_count + 1
      s.play_count = s.play_count + 1
    elseif not zone and s.completed and p.replay[event] then
      s.completed = false
    end
  else
    if s.listen_started_at == nil or event == 'start' or jumped_to_start(prev_position, position, p) then
      s.listen_started_at, s.listened_ms, s.listen_counted, s.completed = ts, 0, false, false
    elseif event ~= 'seek' then
      s.listened_ms = s.listened_ms
        + heard_between(prev_position, prev_ts, position, ts, tonumber(u.playback_rate), p)
    end
    if not s.listen_counted and counts_as_play(s.listened_ms, u.duration_ms, p) then
      s.listen_counted, s.completed, s.completed_at = true, true, ts
      s.play_count = s.play_count + 1
      s.completed_count = s.completed_count + 1
    end
  end
  s.position_ms = position
  s.device_id = u.device_id
  s.event_ts_ms = ts
  s.playback_rate = u.playback_rate
  if event == 'start' then
    s.hidden = false
  end
  return s
end

-- Apply in order, keeping each item's state and device rows in memory; write each item once at the end.
local items = {}  -- key pair index -> {old = stored state, s = current state, devices = flat rows}
local order = {}
local out = {}
for n, u in ipairs(updates) do
  local item = items[u.item]
  if item == nil then
    select_item(u.item)
    local old = load_state()
    item = {old = old, s = old and copy_state(old), devices = redis.call('HGETALL', K_DEVICES), dirty = {},
            reset_ms = 0, hidden_ms = 0, hidden_changed = false}
    if timed then
      local _
      _, item.reset_ms, item.hidden_ms = load_seen()
    end
    items[u.item] = item
    order[#order + 1] = u.item
  end
  if timed and u.received_ms <= item.reset_ms then
    -- A replay's answer is not read; a write's is the state as it stays (none: an empty one).
    out[n] = replaying and 'null'
      or state_row_json(item.s or new_state(u.user_id, u.item_id, u.item_type, u.duration_ms))
  else
    local p = RULES[u.item_type]
    local hidden = item.s ~= nil and item.s.hidden
    update_device(item.devices, item.dirty, u, p)
    item.s = apply_update(item.s, u, p)
    if timed and u.event == 'start' then
      if u.received_ms > item.hidden_ms then  -- even a start older than the state's event shows it
        item.s.hidden = false
        item.hidden_ms, item.hidden_changed = u.received_ms, true
      else
        item.s.hidden = hidden == true
      end
    end
    out[n] = state_row_json(item.s)
  end
end

for _, index in ipairs(order) do
  local item = items[index]
  select_item(index)
  if item.s ~= nil then
    save_state(item.old, item.s, RULES[item.s.item_type].continue_min_position_ms)
    if item.hidden_changed then
      redis.call('HSET', K_STATE, 'hidden_ms', int_text(item.hidden_ms))
    end
    local rows = {}
    for i = 1, #item.devices, 2 do
      rows[item.devices[i]] = item.devices[i + 1]
    end
    local set = {}
    for device_id in pairs(item.dirty) do
      if rows[device_id] then
        set[#set + 1] = device_id
        set[#set + 1] = rows[device_id]
      else
        redis.call('HDEL', K_DEVICES, device_id)
      end
    end
    if #set > 0 then
      redis.call('HSET', K_DEVICES, unpack(set))
    end
  end
end

return '[' .. table.concat(out, ',') .. ']'
