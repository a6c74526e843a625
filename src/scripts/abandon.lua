-- Gives back what a token holds when its caller stops without a lease: its place in the
-- queue (timed out, cancelled) or a lock its attempt took though the reply was lost. Wakes
-- the next waiter when that frees the lock for it.
-- KEYS[1]: the lock key; KEYS[2]: its queue; KEYS[3]: the queue's deadlines (see acquire.lua);
-- ARGV[1]: the token; ARGV[2]: the wake-up channel.
local token = ARGV[1]
local freed = redis.call('GET', KEYS[1]) == token and redis.call('DEL', KEYS[1]) == 1
local was_first = redis.call('LINDEX', KEYS[2], 0) == token
redis.call('LREM', KEYS[2], 0, token)
redis.call('ZREM', KEYS[3], token)
if (freed or was_first) and redis.call('EXISTS', KEYS[1]) == 0 then
  local next = redis.call('LINDEX', KEYS[2], 0)
  if next then
    redis.call('PUBLISH', ARGV[2], next)
  end
end
return 0
