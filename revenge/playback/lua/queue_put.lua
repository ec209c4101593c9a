-- Compare-and-set of a user's play queue: write it only if the stored version is the one the change was
-- based on, so two devices editing at once cannot silently overwrite each other.
--
-- KEYS[1] the queue hash rv:{user}:queue (version -> integer, data -> the queue as JSON)
-- ARGV: base version, new version, new data.
-- Returns {1} when written, {0, stored data or false} when the stored version is another.

local stored = redis.call('HGET', KEYS[1], 'version') or '0'
if stored ~= ARGV[1] then
  return {0, redis.call('HGET', KEYS[1], 'data')}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'data', ARGV[3])
return {1}
