-- signin: the gate before a password is checked, and what a check leaves behind. One script,
-- so that two attempts racing each other are counted one after the other: no more than the
-- budget's worth of passwords is ever checked between two lockouts.
--
-- KEYS[1..3]  failures, lock, strikes of the user name
-- KEYS[4..6]  failures, lock, strikes of the client address
-- KEYS[7]     known: the name signed in from this address lately (spared the address's lock)
-- ARGV[1]     'check'    is either locked? (a remembered good password: nothing is counted)
--             'begin'    the gate, then the attempt counts as failed until it succeeds
--             'succeed'  the password was right
-- begin:   ARGV[2] name budget  ARGV[3] address budget  ARGV[4] window (ms)
--          ARGV[5] first lockout (ms)  ARGV[6] longest lockout (ms)
-- succeed: ARGV[2] how long the name stays known at this address (ms)
-- Replies: check, begin: ms until the lockout ends, 0 to go ahead; succeed: 0.
--
-- A lockout starts when an attempt uses the last of a budget; it clears the count, so after
-- it the next budget's worth may be tried, and the next lockout is twice as long (strikes are
-- forgotten a window after the last lockout ends). A success clears the name's count, lock
-- and strikes, and gives back its count at the address. A known name's attempts at a locked
-- address are not counted there (they would only lengthen a lockout that spares them).

local op = ARGV[1]

local function remaining(lock)
  local ms = redis.call('PTTL', lock)
  if ms > 0 then return ms end
  return 0
end

if op == 'succeed' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then redis.call('DECR', KEYS[4]) end
  redis.call('SET', KEYS[7], '1', 'PX', ARGV[2])
  return 0
end

local wait, address_wait = remaining(KEYS[2]), remaining(KEYS[5])
if redis.call('EXISTS', KEYS[7]) == 0 then wait = math.max(wait, address_wait) end
if op == 'check' or wait > 0 then return wait end

local window, first, longest = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function count(failures, lock, strikes, budget)
  local n = redis.call('INCR', failures)
  if n == 1 then redis.call('PEXPIRE', failures, window) end
  if n >= budget then
    local strike = redis.call('INCR', strikes)
    local ms = math.floor(math.min(first * 2 ^ (strike - 1), longest))
    redis.call('SET', lock, '1', 'PX', ms)
    redis.call('DEL', failures)
    redis.call('PEXPIRE', strikes, ms + window)
  end
end

count(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[2]))
if address_wait == 0 then count(KEYS[4], KEYS[5], KEYS[6], tonumber(ARGV[3])) end
return 0
