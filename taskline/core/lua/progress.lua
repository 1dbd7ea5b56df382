-- progress: a run reports where it is; kept whole on the record (reads need nothing else)
-- and appended to the event streams, there cut short if it is large (thousands of events
-- are kept). Fenced by the run's token.
--
-- KEYS, ARGV[1..4]: those of task.lua.   ARGV[5] token   ARGV[6] progress (JSON)
-- ARGV[7] the progress the events carry (JSON, cut short), '' when it is ARGV[6] whole
-- Replies: 1 written, 0 stale (another attempt runs, or the task ended)

local token, progress, shown = ARGV[5], ARGV[6], ARGV[7]
if not holds_run(token) then return 0 end
redis.call('HSET', REC, 'progress', progress)
if shown == '' then
  emit('progress', 'PROGRESS', {'progress', progress})
else
  emit('progress', 'PROGRESS', {'progress', shown, 'truncated', '1'})
end
return 1
