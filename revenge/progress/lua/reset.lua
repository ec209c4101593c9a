-- Delete a state, its device rows and its entries in the user's sets. Returns 1 when there was a state.
-- ARGV: 1 item_id  2 now_ms when the reset is journaled ('' otherwise)  3 '1' when replayed
--
-- A journaled reset leaves its time in the hash (a tombstone, see load_seen in common.lua), so that a
-- replay neither resets twice nor brings back what came before it. Replayed, it is replay.replay_op:
-- nothing when the state saw it already; over a state holding a write newer than it, the state stays
-- but for its device rows received at or before the reset and a hidden flag set before it, and the
-- tombstone is left. ARGV[4]: CONTINUE_MIN_POSITION_MS (for the state that stays).

local now_ms = tonumber(ARGV[2] or '')
local existed = redis.call('HGET', K_STATE, 'user_id') and 1 or 0
local reset_ms = 0
if now_ms then
  local ops
  local hidden_ms
  ops, reset_ms, hidden_ms = load_seen()
  if ARGV[3] == '1' then
    if now_ms <= reset_ms then
      return 0
    end
    local old = load_state()
    if old then
      local newest = math.max(old.updated_ms, old.event_ts_ms, old.last_played_at or 0, hidden_ms)
      for _, id in ipairs(ops) do
        newest = math.max(newest, op_time(id))
      end
      if newest > now_ms then
        local s = copy_state(old)
        s.version = s.version + 1
        if hidden_ms <= now_ms then
          s.hidden = false
          redis.call('HDEL', K_STATE, 'hidden_ms')
        end
        save_state(old, s, tonumber(ARGV[4]))
        local rows = redis.call('HGETALL', K_DEVICES)
        for i = 1, #rows, 2 do
          if tonumber(string.match(rows[i + 1], ':(%d+)$')) <= now_ms then
            redis.call('HDEL', K_DEVICES, rows[i])
          end
        end
        redis.call('HSET', K_STATE, 'reset_ms', int_text(now_ms))
        return 0
      end
    end
  end
  reset_ms = math.max(reset_ms, now_ms)
end
redis.call('DEL', K_STATE)
redis.call('DEL', K_DEVICES)
for item_type in pairs(ZSETS) do
  redis.call('ZREM', ZSETS[item_type], ARGV[1])
  redis.call('ZREM', RECENT[item_type], ARGV[1])
  redis.call('ZREM', PLAYS[item_type], ARGV[1])
end
if now_ms then
  redis.call('HSET', K_STATE, 'reset_ms', int_text(reset_ms))
end
return existed
