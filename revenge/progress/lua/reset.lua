-- Delete a state, its device rows and its entries in the user's sets. Returns 1 when there was a state.
-- ARGV: 1 item_id

local existed = redis.call('DEL', K_STATE)
redis.call('DEL', K_DEVICES)
for item_type in pairs(ZSETS) do
  redis.call('ZREM', ZSETS[item_type], ARGV[1])
  redis.call('ZREM', RECENT[item_type], ARGV[1])
  redis.call('ZREM', PLAYS[item_type], ARGV[1])
end
return existed
