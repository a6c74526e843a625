-- The remaining TTL of a lock, for its owner only.
-- KEYS[1]: the lock key; ARGV[1]: the owner's token.
-- Returns the TTL in milliseconds (-1: no expiry), or -3 when the token does not hold the lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PTTL', KEYS[1])
end
return -3
