-- release: a postponed task whose time has come goes back in line with a new turn.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- Replies: the turn to publish, or 0 when the task is not (or no longer) postponed

redis.call('ZREM', SCHEDULED, ID)
if redis.call('HGET', REC, 'state') ~= 'SCHEDULED' then return 0 end
move_state('SCHEDULED', 'QUEUED')
remember({at = NOW, change = 'released'})
local turn = enqueue(redis.call('HGET', REC, 'priority'))
emit('released', 'QUEUED')
return turn
