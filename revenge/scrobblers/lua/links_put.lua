-- Replace one link whole. KEYS[1] the link hash rv:{user}:scrobbler:<service>; ARGV: field, value, ...
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
