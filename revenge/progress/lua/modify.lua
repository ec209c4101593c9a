-- rules.mark_played / mark_unplayed / set_hidden, atomically on one (user, item), as made (replay.made_op,
-- replay.apply_op when not journaled) or replayed from a journal (replay.replay_op). Keep in step with
-- revenge/progress/replay.py (the differential test interleaves these with updates, made and replayed).
-- A journaled hide or show (with an id) older than the hidden flag's last change (hidden_ms) leaves the
-- flag; a hide wins a tie.
--
-- ARGV: 1 op (played|unplayed|hidden|shown)  2 user_id  3 item_id  4 item_type  5 duration_ms
--       6 now_ms  7 CONTINUE_MIN_POSITION_MS  8 the action's id ('' : not journaled, nothing remembered)
--       9 '1' when replayed  10 MAX_OPS_SEEN

local op, user_id, item_id, item_type = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local duration_ms, now_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local continue_min_position_ms = tonumber(ARGV[7])
local op_id, replaying, max_ops = ARGV[8] or '', ARGV[9] == '1', tonumber(ARGV[10] or '0')

local old = load_state()
local ops, reset_ms, hidden_ms = {}, 0, 0
if op_id ~= '' then
  ops, reset_ms, hidden_ms = load_seen()
end
if replaying then
  -- replay.op_seen: applied already (or too old to tell, or from before the last reset): nothing to do.
  local seen, oldest = now_ms <= reset_ms, nil
  for _, id in ipairs(ops) do
    if id == op_id then
      seen = true
    end
    local t = op_time(id)
    if oldest == nil or t < oldest then
      oldest = t
    end
  end
  if seen or (#ops >= max_ops and now_ms < oldest) then
    return reply(old and encode_state(old) or {})
  end
end

local function remember(ops_now)
  ops_now[#ops_now + 1] = op_id
  while #ops_now > max_ops do
    table.remove(ops_now, 1)
  end
  redis.call('HSET', K_STATE, 'ops', table.concat(ops_now, ' '))
end

local is_flag = op == 'hidden' or op == 'shown'
local flag_wins = (op == 'hidden' and now_ms >= hidden_ms) or (op == 'shown' and now_ms > hidden_ms)
if op_id ~= '' and is_flag and not flag_wins then
  remember(ops)  -- an older change of the flag: the state stays as it is
  return reply(old and encode_state(old) or {})
end

local s = old and copy_state(old) or new_state(user_id, item_id, item_type, duration_ms)
s.version = s.version + 1
-- Never back in time: a replayed older action must not hide a write received after it from a reset.
s.updated_ms = math.max(s.updated_ms, now_ms)

if replaying and old ~= nil and now_ms < old.event_ts_ms and (op == 'played' or op == 'unplayed') then
  -- A newer event holds the position (replay.replay_op): of a played mark only its completion counts.
  if op == 'played' then
    s.completed_count = s.completed_count + 1
  end
elseif op == 'played' then
  -- An event at now_ms: an offline update from before the mark (replayed later) does not undo it.
  s.item_type, s.duration_ms = item_type, duration_ms
  s.position_ms, s.completed, s.completed_at = duration_ms, true, now_ms
  s.completed_count = s.completed_count + 1
  s.event_ts_ms = math.max(s.event_ts_ms, now_ms)
elseif op == 'unplayed' then
  -- Counters are history and stay; the current listen is forgotten.
  s.item_type, s.duration_ms = item_type, duration_ms
  s.position_ms, s.completed, s.completed_at = 0, false, nil
  s.listen_started_at, s.listened_ms, s.listen_counted = nil, 0, false
  s.event_ts_ms = math.max(s.event_ts_ms, now_ms)
elseif op == 'hidden' or op == 'shown' then
  s.hidden = (op == 'hidden')
else
  return redis.error_reply('ERR unknown progress op ' .. op)
end

save_state(old, s, continue_min_position_ms)
if op_id ~= '' then
  remember(ops)
  if is_flag then
    redis.call('HSET', K_STATE, 'hidden_ms', int_text(now_ms))
  end
end
return reply(encode_state(s))
