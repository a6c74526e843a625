-- The second phase of numbering a quorum acquisition: the fencing counter is a max-register,
-- raised to the number the client settled on (the highest any granting master gave), never
-- lowered. Sequential holders then get strictly increasing numbers: each acquisition's
-- majority overlaps the majority that holds the previous number.
-- KEYS[1]: the fencing counter; ARGV[1]: the number.
-- Returns 1.
local fence = ARGV[1]
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(fence) then
  redis.call('SET', KEYS[1], fence)
end
return 1
