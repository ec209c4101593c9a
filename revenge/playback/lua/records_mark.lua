-- Take one record out of one service's outbox, with its delivery.
--
-- KEYS[1] the outbox zset rv:{user}:outbox:<service>, KEYS[2] the record hash rv:{user}:scrobble:<id>
-- ARGV: id, service, the delivery encoded (state|at|reason). Returns 1 when the record was queued (and
-- has the delivery now), 0 otherwise.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'd:' .. ARGV[2], ARGV[3])
  return 1
end
return 0
