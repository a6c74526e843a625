-- Resets the TTL of a lock only for its owner; never re-creates an expired key.
-- KEYS[1]: the lock key; ARGV[1]: the owner's token; ARGV[2]: the new TTL in milliseconds.
-- Returns 1 when extended, 0 when the token does not hold the lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
