-- Releases the lock only for its owner, then wakes the next waiter, in one atomic step.
-- KEYS[1]: the lock key; KEYS[2]: its queue of waiting tokens (see acquire.lua);
-- ARGV[1]: the owner's token; ARGV[2]: the wake-up channel.
-- The message names the token whose turn it is, so only that waiter wakes; with nobody queued
-- there is nobody to wake (a waiter joins the queue in the attempt after its subscription, and
-- that attempt finds the lock free). Returns 1 when released, 0 when the token does not hold
-- the lock (nothing is deleted).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local next = redis.call('LINDEX', KEYS[2], 0)
  if next then
    redis.call('PUBLISH', ARGV[2], next)
  end
  return 1
end
return 0
