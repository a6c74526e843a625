-- Takes the lock when it is free and numbers the acquisition, in one atomic step.
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter (same cluster slot);
-- ARGV[1]: the owner's token; ARGV[2]: the TTL in milliseconds.
-- Returns {1, fencing number} when taken, else {0, the holder's remaining TTL in ms (-1: no
-- expiry)}, so a waiter knows how long it may sleep without a second round trip.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
-- Already ours: this attempt was resent after its reply was lost with the connection.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return {1, tonumber(redis.call('GET', KEYS[2]))}
end
return {0, redis.call('PTTL', KEYS[1])}
