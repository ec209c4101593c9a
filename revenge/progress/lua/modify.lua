-- rules.mark_played / mark_unplayed / set_hidden, atomically on one (user, item). Keep in step with
-- revenge/progress/rules.py (the differential test interleaves these with updates).
--
-- ARGV: 1 op (played|unplayed|hidden|shown)  2 user_id  3 item_id  4 item_type  5 duration_ms
--       6 now_ms  7 CONTINUE_MIN_POSITION_MS

local op, user_id, item_id, item_type = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local duration_ms, now_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local continue_min_position_ms = tonumber(ARGV[7])

local old = load_state()
local s = old and copy_state(old) or new_state(user_id, item_id, item_type, duration_ms)
s.version = s.version + 1
s.updated_ms = now_ms

if op == 'played' then
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
return reply(encode_state(s))
