-- Gives back everything a token holds when its caller stopped without a lease (timed out,
-- cancelled, closed, or its reply was lost): the lock, if an attempt took it, and its place in
-- the queue. It also withdraws the token for a while, so that a copy of an attempt still on its
-- way (in a paused Redis's socket buffer, say) takes nothing when it finally runs. Wakes the
-- next waiter when that frees the lock for it. Safe to run any number of times.
-- KEYS[1]: the lock key; KEYS[2]: its queue; KEYS[3]: the queue's deadlines; KEYS[4]: the
-- withdrawn tokens (see acquire.lua); ARGV[1]: the token; ARGV[2]: the wake-up channel;
-- ARGV[3]: how long (ms) the token stays withdrawn.
-- Returns 1 when the token held the lock (now released), else 0.
local token, keep_for = ARGV[1], tonumber(ARGV[3])
local held = redis.call('GET', KEYS[1]) == token
if held then
  redis.call('DEL', KEYS[1])
end
local was_first = redis.call('LINDEX', KEYS[2], 0) == token
redis.call('LREM', KEYS[2], 0, token)
redis.call('ZREM', KEYS[3], token)
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZADD', KEYS[4], now + keep_for, token)
if redis.call('PTTL', KEYS[4]) < keep_for then
  redis.call('PEXPIRE', KEYS[4], keep_for)
end
if (held or was_first) and redis.call('EXISTS', KEYS[1]) == 0 then
  local next = redis.call('LINDEX', KEYS[2], 0)
  if next then
    redis.call('PUBLISH', ARGV[2], next)
  end
end
if held then return 1 end
return 0
