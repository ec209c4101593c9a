-- Replay of a journaled queue write (revenge.playback.journaled): the queue as written, with its
-- version, stored only over an older version (a replay of a write the server holds changes nothing).
--
-- KEYS[1] the queue hash rv:{user}:queue. ARGV: version, data. Returns 1 when written, else 0.

local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'data', ARGV[2])
return 1
