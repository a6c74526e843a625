-- Takes the lock when it is free and nobody is waiting for it, or when it is the caller's
-- turn; otherwise, when asked, queues the caller: a release hands the lock to the first in
-- line (see hand_over), so nobody barges ahead of a waiter and a waiter needs no re-checks.
-- A caller that barges (not fair: throughput first) takes a free lock whoever waits, and
-- when it waits it is only woken to try again.
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter; KEYS[3]: the queue; KEYS[4]: tokens
-- withdrawn by callers that stopped (see cleanup.lua); all in one cluster slot.
-- ARGV[1]: the caller's token; ARGV[2]: the TTL in ms; ARGV[3]: absent to try once, 'join' to
-- queue when refused, 'stay' to keep (or take back) a place in the queue when refused; with
-- 'barge ' in front (or just 'barge', to try once) for a caller that barges, and 'quorum ' in
-- front of that for a master of a quorum client (see next_fence).
-- Returns {1, fencing number} when taken, else {0, the holder's remaining TTL in ms (-1: no
-- expiry, -2: not looked up, for a caller behind the first in line, which does not watch the
-- holder; -3: this token was withdrawn), the caller's place in the queue (0: first; -1: not
-- queued), 1 when the holder is other software (which announces no release)}.
local token, ttl, flags = ARGV[1], ARGV[2], ARGV[3] or ''
local quorum = string.find(flags, 'quorum', 1, true) ~= nil
-- Whether anybody waits and whether any tokens were withdrawn, in one command: EXISTS counts a
-- key each time it is named, so naming the withdrawn tokens twice tells the two apart (0:
-- neither, 1: a queue, 2: withdrawn tokens, 3: both). A list that exists is not empty.
local found = redis.call('EXISTS', KEYS[3], KEYS[4], KEYS[4])
-- Free, nobody waits and no token was ever withdrawn: the uncontended path. It returns before
-- the other flags are read and the helpers of turns.lua are built, which would cost it more
-- than its four commands do.
if found == 0 and redis.call('SET', KEYS[1], token, 'NX', 'PX', ttl) then
  return {1, next_fence(KEYS[2], quorum)}
end
-- turns.lua
local function flag(word)
  return string.find(flags, word, 1, true) ~= nil
end
local barging = flag('barge')
local mode = (flag('join') and 'join') or (flag('stay') and 'stay') or ''
local queued, any_withdrawn = found % 2 == 1, found >= 2
-- A late copy of an attempt whose caller already gave up (its reply was lost, Redis was
-- paused) must take nothing and queue nowhere: the caller's cleanup withdrew the token.
local function withdrawn()
  return any_withdrawn and redis.call('ZSCORE', KEYS[4], token)
end
-- Free, and nobody waits (or the caller barges), when a queue or withdrawn tokens kept the
-- attempt off the path above.
if found > 0 and (barging or not queued) and redis.call('SET', KEYS[1], token, 'NX', 'PX', ttl) then
  if withdrawn() then
    redis.call('DEL', KEYS[1])
    return {0, -3, -1, 0}
  end
  if barging and mode == 'stay' and queued then
    -- Its place is no longer needed: left there, it would swallow the next release's wake-up.
    redis.call('LREM', KEYS[3], 1, token .. 'b' .. ttl)
  end
  return {1, next_fence(KEYS[2], quorum)}
end
local holder = redis.call('GET', KEYS[1])
-- Already ours: handed to the caller, or this attempt was resent after its reply was lost. The
-- TTL starts again from now, as the caller's lease does: a write of the caller's own, so that a
-- WAIT sent after this script counts the hand-over too (another client wrote it).
if holder == token then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, redis.call('GET', KEYS[2]) or '0'}
end
if not holder then
  -- Free with waiters in line: it is the turn of the first one still there (a holder that
  -- expired or was deleted handed nothing over).
  local taker, fence, waiting = hand_over(KEYS[1], KEYS[2], KEYS[3], token)
  if taker == token then
    return {1, fence}
  end
  -- Still free (every waiter gone, or one that barges woken to take its chance).
  if not taker and not waiting then
    if withdrawn() then
      return {0, -3, -1, 0}
    end
    return {1, take(KEYS[1], KEYS[2], token, ttl)}
  end
  holder = taker or ''
end
local place = -1
if mode == 'join' or mode == 'stay' then
  local entry = token .. (barging and 'b' or '') .. ttl
  place = mode == 'stay' and redis.call('LPOS', KEYS[3], entry) or false
  if not place then
    if withdrawn() then
      return {0, -3, -1, 0}
    end
    place = redis.call('RPUSH', KEYS[3], entry) - 1
    if place == 0 then
      redis.call('PEXPIRE', KEYS[3], QUEUE_LIFE_MS)
    end
  end
end
local foreign = 0
if holder ~= '' and string.len(holder) ~= 32 then
  foreign = 1
end
return {0, place > 0 and -2 or redis.call('PTTL', KEYS[1]), place, foreign}
