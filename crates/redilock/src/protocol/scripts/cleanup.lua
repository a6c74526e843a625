-- Gives back everything a token holds when its caller stopped without a lease (timed out,
-- cancelled, closed, or its reply was lost): the lock, if an attempt took it or it was handed
-- over, and its place in the queue. It also withdraws the token for a while, so that a copy
-- of an attempt still on its way (in a paused Redis's socket buffer, say) takes nothing when
-- it finally runs. Safe to run any number of times.
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter; KEYS[3]: its queue; KEYS[4]: the
-- withdrawn tokens; ARGV[1]: the token; ARGV[2]: its queue entry as a fair waiter (token and
-- TTL); ARGV[3]: how long (ms) the token stays withdrawn.
-- Returns 1 when the token held the lock (now released), else 0.
-- turns.lua
local token, keep_for = ARGV[1], tonumber(ARGV[3])
local entries = {ARGV[2], token .. 'b' .. string.sub(ARGV[2], 33)} -- as a fair or a barging waiter
-- How many wait, kept up to date, so that the queue is not touched once it may be empty (see
-- hand_over).
local queued = redis.call('LLEN', KEYS[3])
local head = queued > 0 and redis.call('LINDEX', KEYS[3], 0)
local was_first = head == entries[1] or head == entries[2]
for _, entry in ipairs(entries) do
  if queued > 0 then
    queued = queued - redis.call('LREM', KEYS[3], 0, entry)
  end
end
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
-- Added before the expired ones go, so the set is never emptied (and deleted) on the way.
redis.call('ZADD', KEYS[4], now + keep_for, token)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('PTTL', KEYS[4]) < keep_for then
  redis.call('PEXPIRE', KEYS[4], keep_for)
end
if redis.call('GET', KEYS[1]) == token then
  if queued == 0 or not hand_over(KEYS[1], KEYS[2], KEYS[3], nil) then
    redis.call('DEL', KEYS[1])
  end
  return 1
end
-- The next in line is first now: it watches for the holder's expiry.
local first = was_first and queued > 0 and redis.call('LINDEX', KEYS[3], 0)
if first then
  local holder_ttl = math.max(redis.call('PTTL', KEYS[1]), 0)
  redis.call('PUBLISH', client_of(first), 'first ' .. string.sub(first, 1, 32) .. ' ' .. holder_ttl .. ' ' .. KEYS[1])
end
return 0
