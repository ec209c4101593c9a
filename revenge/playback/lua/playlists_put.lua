-- Replace a stored playlist (never create one: a deleted playlist stays deleted).
--
-- KEYS[1] the playlists hash rv:{user}:playlists. ARGV: id, data. Returns 1 when replaced, else 0.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
