-- Releases the lock only for its owner, then wakes the waiters, in one atomic step.
-- KEYS[1]: the lock key; ARGV[1]: the owner's token; ARGV[2]: the wake-up channel.
-- Returns 1 when released, 0 when the token does not hold the lock (nothing is deleted).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
return 0
