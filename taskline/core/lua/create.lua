-- create: record a new task, reserve its reserved range, put it in line (or postpone it).
--
-- KEYS[15] idempotency   the owner's Idempotency-Key record (unused when ARGV[13] is '')
-- KEYS[16] rate          the owner's counter of creations and edits this minute
-- KEYS[17] mine_queued   the owner's index of QUEUED tasks
-- KEYS[18] mine_sched    the owner's index of SCHEDULED tasks
-- KEYS[19] ledger        the ledger of the task's range (unused when ARGV[16] is '')
-- KEYS[20] usage         bytes of params and results the owner's kept tasks hold
-- KEYS[21] origin        the record of the task this one retries or clones (unused when
--                        ARGV[21] is '')
-- KEYS[22] origin_history  its history
-- KEYS[23] origin_retry  the record of the task the caller saw retry the origin (unused
--                        when ARGV[23] is ''): a retry that is gone may be replaced
-- ARGV[5]  name           ARGV[6]  params (JSON)     ARGV[7]  priority (0-9)
-- ARGV[8]  owner          ARGV[9]  families (JSON list of index families)
-- ARGV[10] not_before ISO-8601, or '' to queue now    ARGV[11] not_before (ms)
-- ARGV[12] max_waiting    most waiting tasks the owner may have
-- ARGV[13] digest         the request's digest, '' without an Idempotency-Key
-- ARGV[14] remember_s     how long the Idempotency-Key is remembered (s)
-- ARGV[15] per_minute     most creations and edits a minute
-- ARGV[16] first, ARGV[17] last: the reserved range to reserve, '' for none
-- ARGV[18] size           bytes of the params as stored (counted on the record as `bytes`)
-- ARGV[19] max_task       most bytes one task may hold   ARGV[20] max_user  the owner's
-- ARGV[21] link           '' | 'retry' (run a FAILURE or CANCELLED task again: linked both
--                         ways, `retry_of` here and `retried_by` there, once) | 'clone'
--                         (`clone_of` here; the origin is not changed)
-- ARGV[22] origin id      ARGV[23] the origin's `retried_by` as the caller read it, or ''
-- ARGV[24] line           the name of the task's line (whose keys these are)
-- ARGV[25] callback_url   where the task's end is POSTed (kept as `callback_url`), or ''
-- ARGV[26] via            what asked for a retry ('' a single request, 'bulk' a bulk
--                         action), recorded as `via` in the origin's 'retried' entry
-- Replies:
--   {'created', state, turn (0 when postponed), record as a flat list, rank in line or false}
--   {'existing', task id, digest}   the Idempotency-Key was used already
--   {'limited'}                     per_minute creations this minute already
--   {'full'}                        max_waiting tasks waiting already
--   {'too_large', size}             the params alone take more than max_task
--   {'over_quota', used}            the owner's tasks hold `used` bytes: no room for size
--   {'overlap', ledger entry}       the reserved range overlaps one reserved already
--   {'gone'}                        a retry's origin is no more
--   {'not_ended', state}            a retry's origin is not FAILURE or CANCELLED
--   {'retried', task id}            a retry's origin was retried already, by that task

local IDEMPOTENCY, RATE, MINE_QUEUED, MINE_SCHED, LEDGER, USAGE =
  KEYS[15], KEYS[16], KEYS[17], KEYS[18], KEYS[19], KEYS[20]
local ORIGIN, ORIGIN_HISTORY, ORIGIN_RETRY = KEYS[21], KEYS[22], KEYS[23]
local name, params, priority, owner, fams = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local not_before, not_before_ms = ARGV[10], tonumber(ARGV[11])
local max_waiting, digest, remember_s = tonumber(ARGV[12]), ARGV[13], tonumber(ARGV[14])
local per_minute, first, last = tonumber(ARGV[15]), ARGV[16], ARGV[17]
local size, max_task, max_user = tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
local link, origin_id, seen_retry = ARGV[21], ARGV[22], ARGV[23]
local line, callback_url = ARGV[24], ARGV[25]
local via = ARGV[26] ~= '' and ARGV[26] or nil

if digest ~= '' then
  local seen = redis.call('HMGET', IDEMPOTENCY, 'id', 'digest')
  if seen[1] then return {'existing', seen[1], seen[2]} end
end
local origin = nil
if link == 'retry' then
  -- checked before anything counts: a refused retry costs no creation
  origin = redis.call('HMGET', ORIGIN, 'state', 'retried_by', 'name', 'owner', 'line')
  if not origin[1] then return {'gone'} end
  if origin[1] ~= 'FAILURE' and origin[1] ~= 'CANCELLED' then return {'not_ended', origin[1]} end
  local by = origin[2]
  if by and by ~= '' and (by ~= seen_retry or redis.call('EXISTS', ORIGIN_RETRY) == 1) then
    return {'retried', by}
  end
end
if size > max_task then return {'too_large', size} end
if tonumber(redis.call('GET', RATE) or '0') >= per_minute then return {'limited'} end
if redis.call('ZCARD', MINE_QUEUED) + redis.call('ZCARD', MINE_SCHED) >= max_waiting then
  return {'full'}
end
local used = tonumber(redis.call('GET', USAGE) or '0')
if used + size > max_user then return {'over_quota', used} end
if first ~= '' then
  local clash = reserve(LEDGER, first, last)
  if clash then return {'overlap', clash} end
end
-- only what is accepted counts against the rate
if redis.call('INCR', RATE) == 1 then redis.call('EXPIRE', RATE, 120) end
if digest ~= '' then
  redis.call('HSET', IDEMPOTENCY, 'id', ID, 'digest', digest)
  redis.call('EXPIRE', IDEMPOTENCY, remember_s)
  redis.call('HSET', REC, 'idempotency_key', IDEMPOTENCY)
end
local seq = redis.call('INCR', SEQ)
local state = 'QUEUED'
if not_before ~= '' then state = 'SCHEDULED' end
redis.call('HSET', REC, 'id', ID, 'name', name, 'params', params, 'priority', priority,
           'owner', owner, 'families', fams, 'queued_at', NOW, 'not_before', not_before,
           'attempts', 0, 'turn', 0, 'seq', seq, 'version', 1, 'usage', USAGE, 'bytes', size,
           'line', line)
if callback_url ~= '' then redis.call('HSET', REC, 'callback_url', callback_url) end
redis.call('INCRBY', USAGE, size)
local created = {at = NOW, change = 'created', state = state}
if link == 'retry' then
  redis.call('HSET', REC, 'retry_of', origin_id)
  created.retry_of = origin_id
  redis.call('HSET', ORIGIN, 'retried_by', ID)
  redis.call('HINCRBY', ORIGIN, 'version', 1)
  redis.call('RPUSH', ORIGIN_HISTORY,
             cjson.encode({at = NOW, change = 'retried', by = ID, via = via}))
  redis.call('LTRIM', ORIGIN_HISTORY, -HISTORY_MAX, -1)
  redis.call('XADD', LINE_EVENTS, 'MAXLEN', '~', 10000, '*', 'kind', 'retried', 'id', origin_id,
             'state', origin[1], 'at', NOW, 'name', origin[3], 'owner', origin[4] or '',
             'line', origin[5] or '', 'by', ID)  -- the origin's line, as its every change
elseif link == 'clone' then
  redis.call('HSET', REC, 'clone_of', origin_id)
  created.clone_of = origin_id
end
index_all()
move_state(nil, state)
local turn = 0
if state == 'QUEUED' then
  turn = enqueue(priority)
else
  redis.call('ZADD', SCHEDULED, not_before_ms, ID)
end
remember(created)
-- no wake-up: nobody can watch a task before it exists (and every API process would read it)
record_event('created', state)
local rank = false
if state == 'QUEUED' then rank = redis.call('ZRANK', LINE, ID) end
return {'created', state, turn, redis.call('HGETALL', REC), rank}
