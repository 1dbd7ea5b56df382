-- cancel: a waiting task is cancelled at once (and gives back a reserved range it never
-- used); a running one is asked to stop and is recorded CANCELLED by its run once stopped.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] stop_ms (when a run ignoring the request is stopped hard)   ARGV[6] forget_ms
-- ARGV[7] via     what asked, recorded in the history entry ('' for a single request;
--                 'bulk' for a bulk action), as `via`
-- ARGV[8] counted '1' counts a waiting task's end in METRICS (TASKLINE_METRICS), '' not
-- ARGV[9] heard   the ended states a global webhook hears of, comma-separated (hear_of)
-- KEYS[15] METRICS  the deployment's ended-task figures (core.task_metrics), a hash
-- Replies: {'cancelled'} | {'cancelling'} | {'ended', state} | {'unknown'}

local stop_ms, forget_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local via = ARGV[7] ~= '' and ARGV[7] or nil
if ARGV[8] == '1' then METRICS = KEYS[15] end
hear_of(ARGV[9])
local state = redis.call('HGET', REC, 'state')
if not state then return {'unknown'} end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'CANCELLED' then
  return {'ended', state}
end
if state == 'STARTED' then
  local asked = redis.call('HGET', REC, 'cancel_requested')
  if not asked or asked == '' then
    redis.call('HSET', REC, 'cancel_requested', NOW)
    redis.call('ZADD', CANCELLING, stop_ms, ID)
    remember({at = NOW, change = 'cancel requested', via = via})
    line_event('cancelling', state)
  end
  return {'cancelling'}
end
release_range()
move_state(state, 'CANCELLED')
redis.call('HSET', REC, 'finished_at', NOW)
redis.call('HINCRBY', REC, 'version', 1)
for _, key in ipairs({LINE, SCHEDULED, OUTBOX}) do redis.call('ZREM', key, ID) end
redis.call('ZADD', EXPIRY, forget_ms, ID)
ended_for_webhooks('CANCELLED')
count_end('CANCELLED')
remember({at = NOW, change = 'cancelled', from = state, via = via})
emit('ended', 'CANCELLED')
return {'cancelled'}
