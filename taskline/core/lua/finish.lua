-- finish: a run ends (SUCCESS, FAILURE or CANCELLED). Fenced: only the running attempt may
-- end it, named by its token (from the pool child) or by its runner (from the worker's
-- main process, which outlives a killed child).
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] token ('' to name the run by its runner)   ARGV[6] runner ('' with a token)
-- ARGV[7] final state   ARGV[8] error (JSON) or ''   ARGV[9] forget_ms (when to forget it)
-- ARGV[10] stored       bytes of the result Celery keeps: added to the record's `bytes` and
--                       to its owner's count (`usage`)
-- ARGV[11] meta         Celery's meta of the run's end (stored with it, so the result
--                       backend writes none of its own), '' for none
-- ARGV[12] meta_expires its expiry in seconds (0: none)
-- ARGV[13] traceback    a failure's traceback (cut to its setting), kept as the record's
--                       `traceback` and its bytes counted as `stored` is; '' for none
-- ARGV[14] run_ms       the run's time in ms, recorded for estimates (core.estimates) if it
--                       ends SUCCESS; '' records none (a padded run, or a run ended from
--                       outside)
-- ARGV[15] samples      run times kept per list (TASKLINE_ESTIMATE_SAMPLES)
-- ARGV[16] counted      '1': the end is counted in METRICS (TASKLINE_METRICS); '' it is not
-- ARGV[17] wait_bucket  ARGV[18] wait_seconds: the run's wait (creation → claim), its
--                       bucket's index in core.task_metrics.BUCKETS and its seconds; ''
--                       when not known
-- ARGV[19] run_bucket   ARGV[20] run_seconds: its run (claim → end), the same
-- ARGV[21] heard        the ended states a global webhook hears of, comma-separated (hear_of)
-- KEYS[15] METRICS      the deployment's ended-task figures (core.task_metrics), a hash
-- KEYS[16] RUNTIMES     the task type's run times (ms, newest first), a list; absent with
--                       no run_ms
-- KEYS[17] BUCKET       its size bucket's run times; RUNTIMES again when it has none
-- Replies: 1 ended (and counted), 0 stale (the run no longer holds the task: nothing
-- changed, nothing counted)

local token, runner, final, error, forget_ms =
  ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local meta, meta_expires = ARGV[11], ARGV[12]
if token ~= '' then
  if not holds_run(token) then return 0 end
elseif redis.call('HGET', REC, 'state') ~= 'STARTED'
    or redis.call('HGET', REC, 'runner') ~= runner then
  return 0
end
local traceback = ARGV[13]
local stored = (tonumber(ARGV[10]) or 0) + #traceback
if traceback ~= '' then redis.call('HSET', REC, 'traceback', traceback) end
local usage = fixed().usage
if stored > 0 and usage and usage ~= '' then
  redis.call('HINCRBY', REC, 'bytes', stored)
  redis.call('INCRBY', usage, stored)
end
-- counted here, with the end: the finish is the worker's round trip anyway, so the figures
-- cost none, and an end is counted once, whoever records it
if ARGV[16] == '1' then METRICS = KEYS[15] end
hear_of(ARGV[21])
local times = {}
for i, histogram in ipairs({'wait', 'run'}) do
  local bucket, seconds = ARGV[15 + 2 * i], ARGV[16 + 2 * i]
  if bucket ~= '' then table.insert(times, {histogram, bucket, seconds}) end
end
end_task('STARTED', final, error, forget_ms, times)
local run_ms, samples = ARGV[14], tonumber(ARGV[15])
if final == 'SUCCESS' and run_ms ~= '' and KEYS[16] then
  -- folded in here: the finish is the worker's round trip anyway, so estimates cost none
  for _, list in ipairs(KEYS[17] ~= KEYS[16] and {KEYS[16], KEYS[17]} or {KEYS[16]}) do
    redis.call('LPUSH', list, run_ms)
    redis.call('LTRIM', list, 0, samples - 1)
  end
end
store_meta(meta, meta_expires)
return 1
