-- allowance: one use counted against several budgets at once (e.g. a user's and a client
-- address's serial checks), each a fixed window that begins with its first use. A use any
-- budget has no room for is refused and counted nowhere.
--
-- KEYS[1..n]  one counter per budget
-- ARGV[1]     uses allowed per window   ARGV[2] window (ms)
-- Replies: 0 when counted; else ms until the fullest budget's window ends.

local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= limit then
    local ms = redis.call('PTTL', key)
    if ms < 0 then  -- a counter that lost its expiry: it ends one window from now
      ms = window
      redis.call('PEXPIRE', key, window)
    end
    wait = math.max(wait, ms, 1)
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
return 0
