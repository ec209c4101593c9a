-- Star keys for a user at a time, within the cap, atomically; the newest star or unstar of a key wins,
-- whatever the order the writes come in (two instances' journals replayed after a crash, in any order).
--
-- KEYS[1] the stars hash rv:{user}:stars (key -> ms: the first star since the key's last unstar)
-- KEYS[2] rv:{user}:stars:times  hash: starred key -> the times of its stars since its last unstar,
--         ascending, space-separated (the last STAR_TIMES: an unstar replayed late leaves the first one
--         after it as the star's time)
-- KEYS[3] rv:{user}:stars:gone  sorted set: key -> the time of its last unstar (kept once the key is
--         unstarred: a tombstone; see marks_unstar.lua)
-- ARGV: cap, time, how many star times to keep per key, keys...
-- A key unstarred at or after the time is left alone (an unstar wins a tie). Returns 1 when written,
-- 0 when the cap would be passed (nothing written).

local at, keep = tonumber(ARGV[2]), tonumber(ARGV[3])
local apply, new = {}, 0
for i = 4, #ARGV do
  local gone = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if not gone or tonumber(gone) < at then
    apply[#apply + 1] = ARGV[i]
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
  end
end
if redis.call('HLEN', KEYS[1]) + new > tonumber(ARGV[1]) then return 0 end
for _, key in ipairs(apply) do
  local times, seen = {}, false
  for t in string.gmatch(redis.call('HGET', KEYS[2], key) or '', '%d+') do
    times[#times + 1] = tonumber(t)
    seen = seen or tonumber(t) == at
  end
  if not seen then
    times[#times + 1] = at
    table.sort(times)
    while #times > keep do
      table.remove(times, 1)
    end
  end
  local text = {}
  for i, t in ipairs(times) do
    text[i] = string.format('%d', t)
  end
  -- Starring again keeps the first time; an earlier star seen later (replayed) is the first one.
  redis.call('HSET', KEYS[1], key, text[1])
  redis.call('HSET', KEYS[2], key, table.concat(text, ' '))
end
return 1
