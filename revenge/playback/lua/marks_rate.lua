-- Set (1..5) or remove (0) a user's rating of one key at a time, within the cap; the newest change of a
-- key wins, whatever the order the writes come in (a tie: the later arrival).
--
-- KEYS[1] the ratings hash rv:{user}:ratings (key -> rating)
-- KEYS[2] rv:{user}:ratings:at  sorted set: key -> the time of its last change (kept once the rating
--         is removed; past the bound the oldest go)
-- ARGV: cap, key, rating, time, how many change times to keep.
-- Returns 1 when written (or left to a newer change), 0 when the cap would be passed.

local key, at = ARGV[2], tonumber(ARGV[4])
local last = redis.call('ZSCORE', KEYS[2], key)
if last and tonumber(last) > at then
  return 1
end
if ARGV[3] == '0' then
  redis.call('HDEL', KEYS[1], key)
elseif redis.call('HEXISTS', KEYS[1], key) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
else
  redis.call('HSET', KEYS[1], key, ARGV[3])
end
redis.call('ZADD', KEYS[2], ARGV[4], key)
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return 1
