-- Resets the TTL of a lock only for its owner; never re-creates an expired key. The first
-- waiter in line watches for the holder's expiry: when the TTL shrinks it is told the new one
-- ('first <token> <TTL ms> <key>', see hand_over), so that it takes over a lock shortened to
-- expire soon as soon as it does (a longer TTL it finds when it looks at the old one's end).
-- KEYS[1]: the lock key; KEYS[2]: its queue. ARGV[1]: the owner's token; ARGV[2]: the new
-- TTL in milliseconds.
-- Returns 1 when extended, 0 when the token does not hold the lock.
-- turns.lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local before = redis.call('PTTL', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if before < 0 or tonumber(ARGV[2]) < before then
  local first = redis.call('LINDEX', KEYS[2], 0)
  if first then
    local token = string.sub(first, 1, 32)
    redis.call('PUBLISH', client_of(token), 'first ' .. token .. ' ' .. ARGV[2] .. ' ' .. KEYS[1])
  end
end
return 1
