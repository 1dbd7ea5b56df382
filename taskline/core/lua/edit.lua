-- edit: change a waiting task: params, priority (moves it in line), not_before (postpones
-- it, or brings it back). New params swap the task's reserved range atomically while the
-- task has never run; once it ran (a lost run put it back in line) it keeps its range for
-- good, since the run may have issued any of it: other ranges are refused.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- KEYS[15] ledger       the ledger of the range the new params need (unused without ARGV[13])
-- KEYS[16] rate         the owner's counter of creations and edits this minute
-- ARGV[5]  version      the version the caller saw (If-Match), '' for any
-- ARGV[6]  params       new params (JSON), '' to keep them
-- ARGV[7]  priority     new priority, '' to keep it
-- ARGV[8]  postpone     'keep' | 'clear' | 'set'    ARGV[9] not_before ISO   ARGV[10] its ms
-- ARGV[11] change       the history entry (JSON)
-- ARGV[12] first, ARGV[13] last: the reserved range the new params need, '' for none
-- ARGV[14] per_minute   most creations and edits a minute
-- ARGV[15] size         bytes of the new params as stored (0 when kept)
-- ARGV[16] max_task     most bytes one task may hold
-- ARGV[17] max_user     most bytes the owner's kept tasks may hold (counted in `usage`)
-- ARGV[18] families     the task's index families with the new params (JSON list; its
--                       searchable params' values may have changed), '' to keep them
-- Replies: {'edited', turn to publish or 0} | {'conflict', state} | {'precondition', version}
--          | {'overlap', ledger entry} | {'kept', attempts} | {'limited'} | {'too_large', size}
--          | {'over_quota', bytes the owner's tasks hold} | {'unknown'}

local LEDGER, RATE = KEYS[15], KEYS[16]
local version, params, new_priority, postpone = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local not_before, not_before_ms, change = ARGV[9], tonumber(ARGV[10]), ARGV[11]
local first, last, per_minute = ARGV[12], ARGV[13], tonumber(ARGV[14])
local size, max_task, max_user = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local new_families = ARGV[18]

local state = redis.call('HGET', REC, 'state')
if not state then return {'unknown'} end
if state ~= 'QUEUED' and state ~= 'SCHEDULED' then return {'conflict', state} end
local current = redis.call('HGET', REC, 'version')
if version ~= '' and version ~= current then return {'precondition', current} end
if tonumber(redis.call('GET', RATE) or '0') >= per_minute then return {'limited'} end
local usage, held = unpack(redis.call('HMGET', REC, 'usage', 'bytes'))
local grows = 0
if params ~= '' then
  if size > max_task then return {'too_large', size} end
  grows = size - (tonumber(held) or 0)
  local used = tonumber(usage and usage ~= '' and redis.call('GET', usage) or '0') or 0
  if grows > 0 and used + grows > max_user then return {'over_quota', used} end
end
local swap = first ~= ''
if swap then
  local old_ledger, old_entry, attempts =
    unpack(redis.call('HMGET', REC, 'ledger', 'ledger_entry', 'attempts'))
  local same = old_ledger == LEDGER and old_entry == first .. ':' .. last .. ':' .. ID
  if same then
    swap = false
  elseif attempts ~= '0' then
    return {'kept', attempts}
  end
end
if swap then
  local old_ledger, old_entry = unpack(redis.call('HMGET', REC, 'ledger', 'ledger_entry'))
  if old_ledger and old_ledger ~= '' then redis.call('ZREM', old_ledger, old_entry) end
  local clash = reserve(LEDGER, first, last)
  if clash then
    if old_ledger and old_ledger ~= '' then
      redis.call('ZADD', old_ledger, string.match(old_entry, '^(%d+):'), old_entry)
    end
    return {'overlap', clash}
  end
end
if redis.call('INCR', RATE) == 1 then redis.call('EXPIRE', RATE, 120) end
local priority = redis.call('HGET', REC, 'priority')
if params ~= '' then
  redis.call('HSET', REC, 'params', params, 'bytes', size)
  if usage and usage ~= '' then redis.call('INCRBY', usage, grows) end
end
if new_families ~= '' then refamily(cjson.decode(new_families), state) end
local requeue = false
if new_priority ~= '' and new_priority ~= priority then
  priority = new_priority
  redis.call('HSET', REC, 'priority', priority)
  requeue = state == 'QUEUED'
end
if postpone == 'set' then
  redis.call('HSET', REC, 'not_before', not_before)
  redis.call('ZADD', SCHEDULED, not_before_ms, ID)
  if state == 'QUEUED' then
    move_state(state, 'SCHEDULED')
    redis.call('ZREM', LINE, ID)
    redis.call('ZREM', OUTBOX, ID)
    redis.call('HINCRBY', REC, 'turn', 1)
    state = 'SCHEDULED'
  end
  requeue = false
elseif postpone == 'clear' then
  redis.call('HSET', REC, 'not_before', '')
  if state == 'SCHEDULED' then
    redis.call('ZREM', SCHEDULED, ID)
    move_state(state, 'QUEUED')
    state = 'QUEUED'
    requeue = true
  end
end
local turn = 0
if requeue then turn = enqueue(priority) end
redis.call('HINCRBY', REC, 'version', 1)
remember(cjson.decode(change))
if postpone == 'set' then emit('postponed', state) else emit('edited', state) end
return {'edited', turn}
