-- Store a new playlist unless the user has the most they may.
--
-- KEYS[1] the playlists hash rv:{user}:playlists (id -> the playlist as JSON)
-- ARGV: cap, id, data. Returns 1 when stored, 0 at the cap.

if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
