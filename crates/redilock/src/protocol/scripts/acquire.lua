-- Takes the lock when it is free and it is the caller's turn, and numbers the acquisition, in
-- one atomic step. Waiters queue in arrival order, so a release goes to the longest waiter and
-- nobody barges ahead of it.
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter; KEYS[3]: the queue of waiting tokens
-- (a list); KEYS[4]: each queued token's deadline (a sorted set); KEYS[5]: tokens withdrawn by
-- callers that stopped (see cleanup.lua); all in one cluster slot.
-- ARGV[1]: the caller's token; ARGV[2]: the TTL in milliseconds; ARGV[3]: absent to try
-- once, else how long (ms) the caller's place in the queue lasts unless it tries again.
-- Returns {1, fencing number} when taken, else {0, the holder's remaining TTL in ms (-1: no
-- expiry, -2: free but another waiter's turn, -3: this token was withdrawn)}.
local token, queued_for = ARGV[1], tonumber(ARGV[3] or 0)
-- A late copy of an attempt whose caller already gave up (its reply was lost, Redis was
-- paused) must take nothing: the caller's cleanup withdrew the token.
if redis.call('ZSCORE', KEYS[5], token) then
  return {0, -3}
end
local head = redis.call('LINDEX', KEYS[3], 0)
local now = 0
-- The clock is read only when there is a queue to look after: not on the uncontended path.
if head or queued_for > 0 then
  local clock = redis.call('TIME')
  now = clock[1] * 1000 + math.floor(clock[2] / 1000)
end
-- Waiters that stopped trying (crashed, or gone without leaving) lose their place.
while head do
  local deadline = redis.call('ZSCORE', KEYS[4], head)
  if deadline and tonumber(deadline) >= now then break end
  redis.call('LPOP', KEYS[3])
  redis.call('ZREM', KEYS[4], head)
  head = redis.call('LINDEX', KEYS[3], 0)
end
if (not head or head == token) and redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2]) then
  if head then
    redis.call('LPOP', KEYS[3])
    redis.call('ZREM', KEYS[4], token)
  end
  -- The fencing number is the counter plus one, but never below the Redis clock in
  -- microseconds: a Redis that restarted without its data (or a replica promoted before the
  -- counter reached it) still numbers above every earlier holder, as long as its host's clock
  -- does not step back. One acquisition takes far more than a microsecond, so the counter
  -- never runs ahead of the clock.
  local clock = redis.call('TIME')
  local floor = clock[1] * 1000000 + clock[2]
  local fence = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, floor)
  redis.call('SET', KEYS[2], string.format('%d', fence))
  return {1, fence}
end
-- Already ours: this attempt was resent after its reply was lost with the connection.
if redis.call('GET', KEYS[1]) == token then
  return {1, tonumber(redis.call('GET', KEYS[2]))}
end
if queued_for > 0 then
  if redis.call('ZADD', KEYS[4], now + queued_for, token) == 1 then
    redis.call('RPUSH', KEYS[3], token)
  end
  -- The queue disappears with its last live waiter.
  redis.call('PEXPIRE', KEYS[3], queued_for)
  redis.call('PEXPIRE', KEYS[4], queued_for)
end
return {0, redis.call('PTTL', KEYS[1])}
