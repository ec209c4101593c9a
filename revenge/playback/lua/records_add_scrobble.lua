-- Record one listen: revenge.playback.scrobbles.add_to, atomically per (user, item, started_at).
--
-- KEYS[1] the record hash   rv:{user}:scrobble:<item>-<started_at>
-- KEYS[2] the stats hash    rv:{user}:listening        (<day>:<type>:ms and <day>:<type>:n)
-- KEYS[3..] the outboxes the record goes into, rv:{user}:outbox:<service> (zset: member the record id,
--           score started_at); none for an item type that is not forwarded
-- ARGV: user_id, item_id, item_type, started_at, listened_ms, device_id, source, recorded_at, id, day
--
-- A new record goes into the outboxes and the stats of its start day. A repeat keeps the stored record
-- but for listened_ms, which grows to the repeat's when that is larger (the stats by the difference).
-- Returns {1 = created | 0 = repeat, the record's fields as HGETALL gives them}.

local listened = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local old = tonumber(redis.call('HGET', KEYS[1], 'listened_ms'))
  if listened > old then
    redis.call('HSET', KEYS[1], 'listened_ms', ARGV[5])
    local stored_type = redis.call('HGET', KEYS[1], 'item_type')
    -- The difference of two integers below 2^53 is exact; tostring of it is the integer's digits.
    redis.call('HINCRBY', KEYS[2], ARGV[10] .. ':' .. stored_type .. ':ms', string.format('%d', listened - old))
  end
  return {0, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'item_id', ARGV[2], 'item_type', ARGV[3],
           'started_at', ARGV[4], 'listened_ms', ARGV[5], 'device_id', ARGV[6], 'source', ARGV[7],
           'recorded_at', ARGV[8])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[4], ARGV[9])
end
redis.call('HINCRBY', KEYS[2], ARGV[10] .. ':' .. ARGV[3] .. ':ms', ARGV[5])
redis.call('HINCRBY', KEYS[2], ARGV[10] .. ':' .. ARGV[3] .. ':n', 1)
return {1, redis.call('HGETALL', KEYS[1])}
