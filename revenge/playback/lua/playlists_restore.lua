-- Replay of a journaled playlist write (revenge.playback.journaled): the playlist as it was written,
-- stored unless the stored one changed later (its changed_ms, read from the stored JSON: no cjson needed).
-- Mode 'add' may create it; 'put' only replaces (a deleted playlist stays deleted).
--
-- KEYS[1] the playlists hash rv:{user}:playlists. ARGV: id, data, changed_ms, mode ('add' | 'put').
-- Returns 1 when written, 0 otherwise.

local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
  if ARGV[4] ~= 'add' then return 0 end
else
  local changed = tonumber(string.match(stored, '"changed_ms":(%d+)') or '0')
  if changed > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
