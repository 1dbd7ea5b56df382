-- finish: a run ends (SUCCESS, FAILURE or CANCELLED). Fenced: only the running attempt may
-- end it, named by its token (from the pool child) or by its runner (from the worker's
-- main process, which outlives a killed child).
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] token ('' to name the run by its runner)   ARGV[6] runner ('' with a token)
-- ARGV[7] final state   ARGV[8] error (JSON) or ''   ARGV[9] forget_ms (when to forget it)
-- Replies: 1 ended, 0 stale (the run no longer holds the task: nothing changed)

local token, runner, final, error, forget_ms =
  ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
if token ~= '' then
  if not holds_run(token) then return 0 end
elseif redis.call('HGET', REC, 'state') ~= 'STARTED'
    or redis.call('HGET', REC, 'runner') ~= runner then
  return 0
end
end_task('STARTED', final, error, forget_ms)
return 1
