-- head: the task the next turn of a line's replicated (quorum) queue runs, whichever task of
-- the line its message was sent for: such a queue keeps no priorities, so the order is the
-- line's. A task of the line that started and has not ended comes first (a run holds its
-- lease: the turn waits for it; the run was lost: the task runs again), then the first task
-- of the line. Changes nothing.
--
-- KEYS[1] line      the line's waiting tasks in run order
-- KEYS[2] started   the index of the line's STARTED tasks (all names and owners), by creation
-- ARGV[1] records   the prefix of the task records' keys (core.records.Keys.task)
-- Replies: {id, name, params (JSON)}, or {} when no task started or waits
-- (A script of its own: it finds its task, so task.lua's keys do not apply.)

local found = redis.call('ZRANGE', KEYS[2], 0, 0)[1] or redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if not found then return {} end
local fields = redis.call('HMGET', ARGV[1] .. found, 'name', 'params')
if not fields[1] then return {} end
return {found, fields[1], fields[2]}
