-- Releases the lock only for its owner, handing it to the first waiter in line (see
-- hand_over), in one atomic step.
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter; KEYS[3]: its queue.
-- ARGV[1]: the owner's token.
-- Returns 1 when released, 0 when the token does not hold the lock (nothing is changed).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
-- Nobody waits, most of the time: EXISTS tells it for less than hand_over's look at the line,
-- and before the helpers of turns.lua are built.
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
-- turns.lua
if not hand_over(KEYS[1], KEYS[2], KEYS[3], nil) then
  redis.call('DEL', KEYS[1])
end
return 1
