-- Release a forwarding lease only when it is still ours (compare and delete).
-- KEYS[1] the lease rv:{user}:scrobbler-lease:<service>; ARGV[1] the holder's token. Returns 1 if freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
