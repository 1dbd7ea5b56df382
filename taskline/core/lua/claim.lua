-- claim: the worker takes a message's turn before running it. The run's token is its
-- attempt number: every later write of the run (progress, pages, renew, finish) carries it.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5]  turn          the message's turn, '' for a message sent without one (by name from
--                        another tool): it is adopted with turn 0, unless its task type needs
--                        the ledger. A turnless message stands for turn 0: the turn of an
--                        adopted task never put back in line (a task the API created is in
--                        line only with a turn of 1 or more)
-- ARGV[6]  redelivered   '1' when RabbitMQ redelivered the message: a redelivery of a
--                        running task's turn whose run was lost runs it again, unless Celery
--                        stored its SUCCESS or it was asked to stop (then it ends so)
-- ARGV[7]  name          ARGV[8] params (JSON): for an adopted task
-- ARGV[9]  families      index families of an adopted task (JSON)
-- ARGV[10] ranged        '1' when the task type reserves a range (cannot be adopted)
-- ARGV[11] runner        who runs it (host:pid)       ARGV[12] lease_ms
-- ARGV[13] forget_ms     when to forget a task this claim ends (refused, cancelled, or a
--                        lost run's SUCCESS)
-- ARGV[14] meta          Celery's STARTED meta of the run (stored with the claim, so the
--                        result backend writes none of its own), '' for none
-- ARGV[15] meta_expires  its expiry in seconds (0: none)
-- ARGV[16] quorum        '1': a turn of a replicated queue, bound at its delivery to the task
--                        it runs (core/lua/head.lua), whatever its turn number: a run that
--                        was lost runs again (as on a redelivery); a turn that comes to
--                        nothing is passed on while tasks wait in line. Its meta is the bound
--                        task's (Celery made it for the message as bound), stored as it is
--                        claimed
-- ARGV[17] line          the name of the line whose worker claims (an adopted task's line);
--                        a task of another line is not claimed here ('' claims any: a caller
--                        without lines)
-- ARGV[18] main          '1' when that line is the main line, which a record made before
--                        lines (no `line` field) is on
-- ARGV[19] counted       '1': an end this claim records is counted in METRICS
--                        (TASKLINE_METRICS); '' it is not
-- ARGV[20] heard         the ended states a global webhook hears of, comma-separated
--                        (hear_of)
-- KEYS[15] METRICS       the deployment's ended-task figures (core.task_metrics), a hash
-- Replies:
--   {'claimed', token, params, queued_at, now_ms}   run it (queued_at: the record's, ISO;
--                                now_ms: the claim's time, for the run's wait)
--   {'held', holder}             a live run of this turn holds the lease: try again later
--   {'skipped', why}             do not run: unknown, superseded, duplicate, a final state
--                                (SUCCESS: a lost run Celery stored so), cancelled (a run
--                                asked to stop died), refused (no ledger),
--                                mismatch (the message names another task type),
--                                line (the task is on another line than this queue's)
--   {'passed', why}              (quorum) do not run, put the message back: tasks wait

local turn, redelivered, name, params = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local fams, ranged, runner, lease_ms = ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])
local forget_ms, meta, meta_expires = tonumber(ARGV[13]), ARGV[14], ARGV[15]
local quorum, line, main = ARGV[16] == '1', ARGV[17], ARGV[18] == '1'
if ARGV[19] == '1' then METRICS = KEYS[15] end
hear_of(ARGV[20])

local found = redis.call('HMGET', REC, 'state', 'name', 'turn', 'params', 'cancel_requested',
                         'line')
local state, asked = found[1], found[5]

if state and line ~= '' then
  -- another line's task: its own line's worker runs it, from its own line's queue
  local own = found[6] or ''
  if own ~= line and not (own == '' and main) then
    if quorum and redis.call('ZCARD', LINE) > 0 then return {'passed', 'line'} end
    return {'skipped', 'line'}
  end
end

local function lost_run_end()
  -- a started task whose run was lost (no live run holds its lease) ends instead of running
  -- again if Celery stored its SUCCESS itself (a write not folded into finish.lua, as an
  -- older worker's backend made them) or it was asked to stop (that is the stop it was asked
  -- for), as the scheduler's recovery would end it: that end, recorded; else nil
  local ok, stored = pcall(cjson.decode, redis.call('GET', META) or '')
  if ok and type(stored) == 'table' and stored['status'] == 'SUCCESS' then
    end_task('STARTED', 'SUCCESS', '', forget_ms)
    return 'SUCCESS'
  end
  if asked and asked ~= '' then
    end_task('STARTED', 'CANCELLED', '', forget_ms)
    return 'CANCELLED'
  end
  return nil
end

local bound = quorum and turn ~= ''
if bound then
  if state == 'STARTED' then
    local holder = redis.call('GET', LEASE)
    if holder then return {'held', holder} end
    state = lost_run_end() or state
  end
  if (state ~= 'QUEUED' and state ~= 'STARTED') or found[2] ~= name then
    local why = state or 'unknown'
    if redis.call('ZCARD', LINE) > 0 then return {'passed', why} end
    return {'skipped', why}
  end
  -- the claim below takes the task's current turn (a lost run's: the task runs again)
  turn = found[3]
end

if not state then
  if turn ~= '' then return {'skipped', 'unknown'} end
  local seq = redis.call('INCR', SEQ)
  redis.call('HSET', REC, 'id', ID, 'name', name, 'params', params, 'priority', 5,
             'owner', '', 'families', fams, 'queued_at', NOW, 'not_before', '',
             'attempts', 0, 'turn', 0, 'seq', seq, 'version', 1, 'line', line)
  index_all()
  if ranged == '1' then
    local error = cjson.encode({type = 'Refused', message =
      'sent without a turn: a task that reserves a range must be submitted through the API, '
      .. 'which reserves its range'})
    end_task(nil, 'FAILURE', error, forget_ms)
    return {'skipped', 'refused'}
  end
  move_state(nil, 'QUEUED')
  state = 'QUEUED'
elseif found[2] ~= name then
  return {'skipped', 'mismatch'}
elseif found[3] ~= (turn == '' and '0' or turn) then
  -- an older turn, or a message without one for a task the API put in line
  return {'skipped', 'superseded'}
else
  params = found[4]
end
if state == 'STARTED' and not bound then
  -- the same turn while running: a crash redelivers (run again), anything else is a duplicate
  if redelivered ~= '1' then return {'skipped', 'duplicate'} end
  -- a redelivery while the run still holds its lease is no crash: consumer_timeout or a lost
  -- connection requeued the message of a run that goes on
  local holder = redis.call('GET', LEASE)
  if holder then return {'held', holder} end
  local ended = lost_run_end()
  if ended == 'CANCELLED' then return {'skipped', 'cancelled'} end
  if ended then return {'skipped', ended} end
end
if state ~= 'QUEUED' and state ~= 'STARTED' then return {'skipped', state} end
move_state(state, 'STARTED', {'started_at', NOW, 'finished_at', '', 'error', '',
                               'cancel_requested', '', 'progress', '', 'runner', runner,
                               'renewed_at', NOW, 'renewed_ms', NOW_MS})
local token = redis.call('HINCRBY', REC, 'attempts', 1)
redis.call('SET', LEASE, token .. ' ' .. runner, 'PX', lease_ms)
redis.call('ZREM', LINE, ID)
redis.call('ZREM', OUTBOX, ID)
-- a new run starts over: pages of an earlier attempt are gone
redis.call('DEL', PAGES)
emit('started', 'STARTED', {'attempts', token})
store_meta(meta, meta_expires)
return {'claimed', token, params, redis.call('HGET', REC, 'queued_at') or '', NOW_MS}
