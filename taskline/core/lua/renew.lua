-- renew: a live run renews its lease (and the record says when, so a reader can tell a dead
-- run from a slow one). Takes the lease again if it lapsed while Redis was away and nobody
-- claimed the task since. Fenced by the run's token.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] token   ARGV[6] runner   ARGV[7] lease_ms
-- Replies: 1 held, 0 stale (the run should stop)

local token, runner, lease_ms = ARGV[5], ARGV[6], tonumber(ARGV[7])
if not holds_run(token) then return 0 end
redis.call('SET', LEASE, token .. ' ' .. runner, 'PX', lease_ms)
redis.call('HSET', REC, 'renewed_at', NOW, 'renewed_ms', NOW_MS)
return 1
