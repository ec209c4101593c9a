-- One event of one user: appended to the user's stream (its backlog, trimmed to about ARGV[1]
-- entries, dropped ARGV[2] ms after the last event), what the device now plays noted in the user's
-- devices hash, and the event published to every instance (one channel: each instance's one reader
-- keeps the users it has streams for). In one script, so the channel carries each user's events in
-- the order of their ids. A user with no stream open on any instance lately (no KEYS[3], which
-- every instance sets for its streams) has nobody to tell and nothing to replay: only the devices hash
-- is noted.
-- KEYS[1] rv:{user}:events  KEYS[2] rv:{user}:devices  KEYS[3] rv:{user}:listening
-- ARGV: maxlen, stream ttl ms, channel, user id, body, device field ('' none), its value, devices ttl ms
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[6], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\n' .. id .. '\n' .. ARGV[5])
return id
