-- Record what forwarding learnt, on the link of that linked_at only (a report about a link the user
-- has since replaced or removed changes nothing).
-- KEYS[1] the link hash rv:{user}:scrobbler:<service>
-- ARGV[1] linked_at; then field, value pairs: an empty value removes the field.
-- Returns 1 when the link was updated, 0 otherwise.
if redis.call('HGET', KEYS[1], 'linked_at') ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
