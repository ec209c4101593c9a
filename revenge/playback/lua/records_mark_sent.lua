-- Take one record out of the outbox.
--
-- KEYS[1] the outbox zset rv:{user}:scrobble-outbox, KEYS[2] the record hash rv:{user}:scrobble:<id>
-- ARGV: id, now_ms. Returns 1 when the record was unsent (and is sent now), 0 otherwise.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'sent_at', ARGV[2])
  return 1
end
return 0
