-- revoke_tokens: every bearer token of one user, at once. Atomic, so a token issued while
-- this runs is either revoked with the others or (issued after) kept.
--
-- KEYS[1]  the user's token set (core.records.Keys.tokens): token keys scored by expiry
-- ARGV     none
-- Replies: how many live tokens were revoked

local revoked = 0
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 1, #keys, 500 do
  revoked = revoked + redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
end
redis.call('DEL', KEYS[1])
return revoked
