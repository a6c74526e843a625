-- Shared by acquire, release and cleanup (put in front of each): numbering an acquisition and
-- handing a free lock to the first waiter in line. The queue is a list of entries, each a
-- waiter's token (32 characters, the first 16 naming its client) followed by the TTL in
-- milliseconds it asked for (after a 'b' for a waiter that barges). A waiter is woken on its client's channel,
-- 'redilock:wake:<client>', which the client listens to for as long as it has waiters.

local WAKE = 'redilock:wake:'
-- A queue untouched this long is dropped (the waiters still in it re-join at their next
-- re-check): crashed waiters leave no garbage behind for good.
local QUEUE_LIFE_MS = 86400000

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
  local last = tonumber(redis.call('GETSET', fence_key, string.format('%d', fence)))
  if last and last >= fence then -- the clock stepped back (or the counter was raised past it)
    fence = redis.call('INCRBY', fence_key, last + 1 - fence)
  end
  return string.format('%d', fence)
end

-- Gives the lock to `token` for `ttl` ms under a new fencing number, which it returns.
local function take(lock_key, fence_key, token, ttl)
  redis.call('SET', lock_key, token, 'PX', ttl)
  return next_fence(fence_key)
end

local function client_of(token)
  return WAKE .. string.sub(token, 1, 16)
end

-- The lock is free: it goes to the first waiter in line whose client still listens, woken with
-- 'lock <token> <fence> <key>'; the next in line is told it is first, with 'first <token>
-- <holder TTL ms> <key>', so that it alone watches for the holder's expiry. A waiter whose
-- client no longer listens (it crashed) is skipped. `me`, when first, takes the lock without
-- a message. A waiter that barges (not fair, see acquire.lua; its entry has a 'b' after the
-- token) is only told 'free <token> 0 <key>', and the lock stays free for whoever takes it
-- first. Returns the new holder's token and fence (nothing when the lock stays free), and
-- whether waiters are left in line. The queue is not touched again once it may be empty: in a
-- Redis Cluster slot being migrated away, a key that a script deleted may not be touched
-- again (the script would fail half-way).
local function hand_over(lock_key, fence_key, queue_key, me)
  local line = redis.call('LRANGE', queue_key, 0, 1)
  while line[1] do
    local entry, next_entry = line[1], line[2]
    redis.call('LPOP', queue_key)
    local token, ttl = string.sub(entry, 1, 32), string.sub(entry, 33)
    if string.sub(ttl, 1, 1) == 'b' then
      if token == me or redis.call('PUBLISH', client_of(token), 'free ' .. token .. ' 0 ' .. lock_key) > 0 then
        return nil, nil, next_entry ~= nil
      end
    else
      local fence = next_fence(fence_key)
      local woken = token == me
        or redis.call('PUBLISH', client_of(token), 'lock ' .. token .. ' ' .. fence .. ' ' .. lock_key) > 0
      if woken then -- (a waiter skipped leaves a gap in the numbers: they only need to rise)
        redis.call('SET', lock_key, token, 'PX', ttl)
        if next_entry then
          redis.call('PUBLISH', client_of(next_entry), 'first ' .. string.sub(next_entry, 1, 32) .. ' ' .. ttl .. ' ' .. lock_key)
          redis.call('PEXPIRE', queue_key, QUEUE_LIFE_MS)
        end
        return token, fence, next_entry ~= nil
      end
    end
    line = next_entry and redis.call('LRANGE', queue_key, 0, 1) or {}
  end
  return nil, nil, false
end
