-- Publish where an item is and what audio it has (revenge.library.shared_ids), for the other instances.
--
-- KEYS[1] rv:{library}:ids:path   hash "<type>:<relative>" -> item id
-- KEYS[2] rv:{library}:ids:place  hash item id -> "<type>:<relative>"
-- KEYS[3] rv:{library}:ids:content:<type>:<content>  set of item ids with that audio (absent: no content)
-- ARGV: item id, place. The item's previous place, if it still names this item, is dropped: a moved
-- item's old path is free for whatever comes there next. Returns 1.

local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and old ~= ARGV[2] and redis.call('HGET', KEYS[1], old) == ARGV[1] then
  redis.call('HDEL', KEYS[1], old)
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if KEYS[3] then
  redis.call('SADD', KEYS[3], ARGV[1])
end
return 1
