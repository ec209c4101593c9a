-- Star keys for a user, keeping the first time of a key starred already, within the cap, atomically.
--
-- KEYS[1] the stars hash rv:{user}:stars (key -> ms)
-- ARGV: cap, time, keys...
-- Returns 1 when written, 0 when the cap would be passed (nothing written).

local new = 0
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
end
if redis.call('HLEN', KEYS[1]) + new > tonumber(ARGV[1]) then return 0 end
for i = 3, #ARGV do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[2])
end
return 1
