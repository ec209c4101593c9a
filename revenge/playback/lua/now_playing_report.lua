-- One player's now-playing entry for a user; drops the user's ended entries and, past the cap, the
-- ones ending soonest; the key expires with its last entry.
--
-- KEYS[1] the user's hash rv:{user}:now-playing (player -> "<until ms> <json>")
-- ARGV: player, until (ms), json, now (ms), cap. Returns when the user's last entry ends (ms).

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
local now, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local ends = tonumber(string.match(all[i + 1], '^%d+'))
  if ends == nil or ends < now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = {all[i], ends}
  end
end
table.sort(live, function(a, b) return a[2] > b[2] end)
for i = cap + 1, #live do
  redis.call('HDEL', KEYS[1], live[i][1])
end
local latest = tonumber(ARGV[2])
if live[1] ~= nil and live[1][2] > latest then latest = live[1][2] end
redis.call('PEXPIREAT', KEYS[1], latest)
return latest
