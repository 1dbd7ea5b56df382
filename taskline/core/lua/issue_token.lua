-- issue_token: a new bearer token of a user, within the number one user may hold. Atomic, so
-- that tokens issued at once never leave more than that many alive.
--
-- KEYS[1]  the user's token set (core.records.Keys.tokens): token keys scored by expiry (ms)
-- KEYS[2]  the new token's key
-- ARGV[1]  the user's name  ARGV[2] lifetime (ms)  ARGV[3] most tokens a user holds
-- Replies: how many of the user's oldest tokens were revoked to make room
--
-- Expiries come from Redis's clock, one for every API process: a token issued once a
-- revocation began expires later than any it revokes (revoke_tokens.lua), unless the token
-- lifetime setting was shortened meanwhile (then it may be revoked too).

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local ttl, most = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)  -- expired ones
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, KEYS[2])
redis.call('PEXPIRE', KEYS[1], ttl)
local extra = redis.call('ZCARD', KEYS[1]) - most
if extra <= 0 then return 0 end
local oldest = redis.call('ZPOPMIN', KEYS[1], extra)
for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
return extra
