-- Shared by acquire, release, extend and cleanup, each of which has it where its
-- `-- turns.lua` line is (after fence.lua): handing a free lock to the first waiter in line
-- and telling waiters. The queue is a list of entries, each a waiter's token (32 characters,
-- the first 16 naming its client) followed by the TTL in milliseconds it asked for (after a
-- 'b' for a waiter that barges). A waiter is woken on its client's channel,
-- 'redilock:wake:<client>', which the client listens to for as long as it has waiters.

local WAKE = 'redilock:wake:'
-- A queue untouched this long is dropped (the waiters still in it re-join at their next
-- re-check): crashed waiters leave no garbage behind for good.
local QUEUE_LIFE_MS = 86400000

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
