-- reissue: a waiting task gets a new turn in the same place in line. Lost turns come back
-- at the back of RabbitMQ's queue; reissuing the line from the first lost one, in line
-- order, restores the order (the older messages are then dropped as superseded).
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- Replies: the new turn to publish, or 0 when the task is not waiting in line

if redis.call('HGET', REC, 'state') ~= 'QUEUED' then return 0 end
local turn = redis.call('HINCRBY', REC, 'turn', 1)
redis.call('ZADD', OUTBOX, NOW_MS, ID)
return turn
