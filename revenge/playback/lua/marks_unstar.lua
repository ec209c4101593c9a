-- Unstar keys for a user at a time, atomically; the newest star or unstar of a key wins (see
-- marks_star.lua, the same KEYS).
--
-- ARGV: time, how many tombstones to keep, keys...
-- The unstar's time stays as the key's tombstone, so that an older star replayed later is refused; past
-- the bound the oldest tombstones go. A key starred after the time (another instance's star, replayed
-- first) stays starred, since the first of those stars.

local at = tonumber(ARGV[1])
for i = 3, #ARGV do
  local key = ARGV[i]
  local gone = redis.call('ZSCORE', KEYS[3], key)
  if not gone or tonumber(gone) < at then
    redis.call('ZADD', KEYS[3], ARGV[1], key)
    local later = {}
    for t in string.gmatch(redis.call('HGET', KEYS[2], key) or '', '%d+') do
      if tonumber(t) > at then
        later[#later + 1] = t
      end
    end
    if #later > 0 then
      redis.call('HSET', KEYS[1], key, later[1])
      redis.call('HSET', KEYS[2], key, table.concat(later, ' '))
    else
      redis.call('HDEL', KEYS[1], key)
      redis.call('HDEL', KEYS[2], key)
    end
  end
end
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[2])
if excess > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
end
return 1
