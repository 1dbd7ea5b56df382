-- revoke_tokens: one batch of a user's bearer tokens, those held when the revocation began.
-- The caller runs it until none is left: each call stays short however many tokens the user
-- holds, and a token issued meanwhile (expiring after the bound) is kept, not chased forever.
--
-- KEYS[1]  the user's token set (core.records.Keys.tokens): token keys scored by expiry (ms)
-- ARGV[1]  the bound: tokens expiring no later are revoked; '' on the first call, for the
--          latest expiry held now (every token held now, whatever lifetime it was given)
-- ARGV[2]  most tokens revoked by this call
-- Replies: {how many live tokens this call revoked, the bound (to pass on), 1 if more are
--          left under it else 0}

local bound = ARGV[1]
if bound == '' then
  local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #latest == 0 then return {0, '0', 0} end
  bound = latest[2]
end
local batch = tonumber(ARGV[2])
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', bound, 'LIMIT', 0, batch)
local revoked = 0
if #keys > 0 then
  revoked = redis.call('DEL', unpack(keys))
  redis.call('ZREM', KEYS[1], unpack(keys))
end
local more = 0
if #keys == batch and #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', bound, 'LIMIT', 0, 1) > 0 then
  more = 1
end
return {revoked, bound, more}
