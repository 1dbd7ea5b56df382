-- recover: settle a run whose lease lapsed (its pool child or its worker died, or stalled
-- past the lease) and that no message may run again: Celery acknowledges the message of a
-- child lost after it stored SUCCESS, and a worker gone for good takes its run along.
-- Fenced like any write: a stalled run that wakes up finds its token stale and stops.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] node_alive   '1' while the run's worker still sends heartbeats (its main process
--                      then stops a run asked to stop, and records it)
-- ARGV[6] forget_ms    when to forget a task this ends
-- ARGV[7] quiet_ms     how long since the run's last renewal before it counts as lost: past
--                      its lease, with time for a redelivered message to claim it first
-- ARGV[8] counted      '1': an end this records is counted in METRICS (TASKLINE_METRICS)
-- ARGV[9] heard        the ended states a global webhook hears of, comma-separated (hear_of)
-- KEYS[15] METRICS     the deployment's ended-task figures (core.task_metrics), a hash
-- Replies:
--   {'alive'}          the lease is held, the run renewed within quiet_ms, or a live worker
--                      is stopping a cancelled run
--   {'succeeded'}      Celery stored SUCCESS before the run was lost: recorded SUCCESS
--   {'cancelled'}      it was asked to stop and its worker is gone: recorded CANCELLED
--   {'requeued', turn} back in line with a new turn (publish it); attempts counts the rerun
--   {'skipped'}        not running

local node_alive, forget_ms, quiet_ms = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if ARGV[8] == '1' then METRICS = KEYS[15] end
hear_of(ARGV[9])
if redis.call('HGET', REC, 'state') ~= 'STARTED' then return {'skipped'} end
if redis.call('EXISTS', LEASE) == 1 then return {'alive'} end
if NOW_MS - tonumber(redis.call('HGET', REC, 'renewed_ms') or '0') < quiet_ms then
  return {'alive'}
end

local stored = redis.call('GET', META)
if stored then
  local ok, meta = pcall(cjson.decode, stored)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then
    end_task('STARTED', 'SUCCESS', '', forget_ms)
    return {'succeeded'}
  end
end
local asked = redis.call('HGET', REC, 'cancel_requested')
if asked and asked ~= '' then
  if node_alive == '1' then return {'alive'} end
  end_task('STARTED', 'CANCELLED', '', forget_ms)
  return {'cancelled'}
end
move_state('STARTED', 'QUEUED')
redis.call('HSET', REC, 'runner', '', 'progress', '', 'renewed_at', '', 'renewed_ms', '')
remember({at = NOW, change = 'requeued', why = 'its run was lost'})
local turn = enqueue(redis.call('HGET', REC, 'priority'))
emit('requeued', 'QUEUED')
return {'requeued', turn}
