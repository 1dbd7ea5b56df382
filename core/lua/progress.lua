-- progress: a run reports where it is; kept on the record (reads need nothing else) and
-- appended to the event stream. Fenced by the run's token.
--
-- KEYS, ARGV[1..4]: those of task.lua.   ARGV[5] token   ARGV[6] progress (JSON)
-- Replies: 1 written, 0 stale (another attempt runs, or the task ended)

local token, progress = ARGV[5], ARGV[6]
if not holds_run(token) then return 0 end
redis.call('HSET', REC, 'progress', progress)
emit('progress', 'PROGRESS', {'progress', progress})
return 1
