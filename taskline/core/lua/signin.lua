-- signin: the gate before a password is checked, and what a check leaves behind. One script,
-- so that racing attempts are counted one after the other.
--
-- KEYS[1..4]  failures, lock, strikes and checking (checks under way) of the user name
-- KEYS[5..8]  the same of the client address
-- KEYS[9]     known: the name signed in from this address lately (spared the address's lock)
-- ARGV[1]     'check'    is either locked? (a remembered good password: nothing is counted)
--             'begin'    the gate: may a password be checked now?
--             'fail'     the password was wrong
--             'succeed'  the password was right
-- begin:   ARGV[2] attempt id  ARGV[3] name budget  ARGV[4] address budget
--          ARGV[5] how long a check may hold its place (ms), should its end never be told
-- fail:    ARGV[2] attempt id  ARGV[3] name budget  ARGV[4] address budget
--          ARGV[5] window (ms)  ARGV[6] first lockout (ms)  ARGV[7] longest lockout (ms)
-- succeed: ARGV[2] attempt id  ARGV[3] how long the name stays known at this address (ms)
-- Replies: check: ms until the lockout ends, 0 if none. begin: the same, or -1 when every
-- place left in a budget is held by checks under way (wait for one to end, then ask again).
-- fail: ms of the lockout it started (the longer, if both), 0 if none. succeed: 0.
--
-- Only a wrong password counts, once its check has ended: a right one, however many run at
-- once, never does. To keep the budget a bound on guesses all the same, a check holds a
-- place in the name's budget (and, unless the name is known here, the address's) while it
-- runs: failures plus checks under way never exceed a budget, so no more than a budget's
-- worth of wrong passwords is checked between two lockouts, however concurrent. A right
-- password gives its place back; an attempt that finds no place waits for one.
--
-- A lockout starts when a failure uses the last of a budget; it clears the count, so after
-- it the next budget's worth may be tried, and the next lockout is twice as long (strikes are
-- forgotten a window after the last lockout ends). A success clears the name's count, lock
-- and strikes. A failure at an address locked meanwhile is not counted there (it would only
-- lengthen a lockout that spares known names).

local op = ARGV[1]

local function remaining(lock)
  local ms = redis.call('PTTL', lock)
  if ms > 0 then return ms end
  return 0
end

local function give_back(attempt)
  redis.call('ZREM', KEYS[4], attempt)
  redis.call('ZREM', KEYS[8], attempt)
end

if op == 'succeed' then
  give_back(ARGV[2])
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('SET', KEYS[9], '1', 'PX', ARGV[3])
  return 0
end

if op == 'fail' then
  give_back(ARGV[2])
  local window, first, longest = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local function count(failures, lock, strikes, budget)
    local n = redis.call('INCR', failures)
    if n == 1 then redis.call('PEXPIRE', failures, window) end
    if n < budget then return 0 end
    local strike = redis.call('INCR', strikes)
    local ms = math.floor(math.min(first * 2 ^ (strike - 1), longest))
    redis.call('SET', lock, '1', 'PX', ms)
    redis.call('DEL', failures)
    redis.call('PEXPIRE', strikes, ms + window)
    return ms
  end
  local started = count(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[3]))
  if remaining(KEYS[6]) == 0 then
    started = math.max(started, count(KEYS[5], KEYS[6], KEYS[7], tonumber(ARGV[4])))
  end
  return started
end

local known = redis.call('EXISTS', KEYS[9]) == 1
local wait = remaining(KEYS[2])
if not known then wait = math.max(wait, remaining(KEYS[6])) end
if op == 'check' or wait > 0 then return wait end

-- begin
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local attempt, hold = ARGV[2], tonumber(ARGV[5])

local function has_room(failures, checking, budget)
  redis.call('ZREMRANGEBYSCORE', checking, '-inf', now)  -- checks whose end was never told
  local used = tonumber(redis.call('GET', failures) or '0') + redis.call('ZCARD', checking)
  return used < budget
end

local function hold_place(checking)
  redis.call('ZADD', checking, now + hold, attempt)
  redis.call('PEXPIRE', checking, hold)
end

if not has_room(KEYS[1], KEYS[4], tonumber(ARGV[3])) then return -1 end
if not known and not has_room(KEYS[5], KEYS[8], tonumber(ARGV[4])) then return -1 end
hold_place(KEYS[4])
if not known then hold_place(KEYS[8]) end
return 0
