-- Put in front of each script that takes the lock or hands it over (see scripts.rs).

-- Numbers an acquisition: the Redis clock in microseconds, but always above the last number,
-- so a Redis that restarted without its data (or a replica promoted before the counter reached
-- it) still numbers above every earlier holder, as long as its host's clock does not step back.
-- One acquisition takes far more than a microsecond, so the clock is almost always ahead and
-- the number costs two commands: TIME, and GETSET (not SET ... GET, which needs Redis 6.2)
-- to store it and read the last one. Returns the number as text.
-- On a master of a quorum client (`quorum`), the clock is the floor of a counter that does
-- not exist only (first use, or a master that lost its data): the masters' counters then stay
-- equal while they all grant, so the client needs no second round trip to even them out (see
-- raise_fence.lua), and a lost counter still starts above every earlier number.
local function next_fence(fence_key, quorum)
  if quorum and redis.call('EXISTS', fence_key) == 1 then
    return string.format('%d', redis.call('INCR', fence_key))
  end
  local clock = redis.call('TIME')
  local fence = clock[1] * 1000000 + clock[2]
  local text = string.format('%d', fence) -- formatted once: stored, and returned as it is
  local last = tonumber(redis.call('GETSET', fence_key, text))
  if last and last >= fence then -- the clock stepped back (or the counter was raised past it)
    text = string.format('%d', redis.call('INCRBY', fence_key, last + 1 - fence))
  end
  return text
end
