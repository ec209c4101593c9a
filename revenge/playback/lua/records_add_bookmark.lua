-- Store one bookmark unless its (user, item) already has the maximum number.
--
-- KEYS[1] the item's bookmarks hash rv:{user}:bookmarks:<item> (bookmark id -> encoded bookmark)
-- ARGV: id, encoded value, maximum. Returns 1 when stored, 0 when full.

if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
