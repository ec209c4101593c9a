-- Set (1..5) or remove (0) a user's rating of one key, within the cap.
--
-- KEYS[1] the ratings hash rv:{user}:ratings (key -> rating)
-- ARGV: cap, key, rating. Returns 1 when written, 0 when the cap would be passed.

if ARGV[3] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 1
end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
