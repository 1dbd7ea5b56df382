-- delete: forget a task that is not running: record, result, events, history, pages,
-- indexes (its families' and the search indexes of task.lua); a reserved range it never
-- used goes back to the ledger.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- KEYS[15] deliveries   webhook deliveries still to make (worker.webhooks), by due ms
-- KEYS[16] by_task      the same as `<task id> <member>`, scored 0: the task's own are found
--                       by range, and leave with it (as it leaves WEBHOOKS)
-- ARGV[5] unpublished   '1': the task's first message never reached RabbitMQ; its
--                       Idempotency-Key is forgotten too, so a retry creates it afresh
-- The bytes the task held (`bytes`) are taken off its owner's count (`usage`), which goes
-- when it reaches zero.
-- Replies: {'deleted', state it had} | {'running'} | {'unknown'}

local DELIVERIES, BY_TASK = KEYS[15], KEYS[16]

local state = redis.call('HGET', REC, 'state')
if not state then return {'unknown'} end
if state == 'STARTED' then return {'running'} end
-- Removals first: under `maxmemory` Redis refuses a script's first write that may grow its
-- memory (the event below), never a later one, so a full Redis can still free room.
release_range()
if ARGV[5] == '1' then
  local key = redis.call('HGET', REC, 'idempotency_key')
  if key and key ~= '' then redis.call('DEL', key) end
end
local fams = families()
for _, fam in ipairs(fams) do
  redis.call('ZREM', fam .. 'all', ID)
  redis.call('ZREM', fam .. 'state:' .. state, ID)
end
for _, kind in ipairs({'ids', 'created', 'finished'}) do
  redis.call('ZREM', search_index(kind), ID)
end
for _, key in ipairs({LINE, SCHEDULED, OUTBOX, EXPIRY, CANCELLING, WEBHOOKS}) do
  redis.call('ZREM', key, ID)
end
-- '<id> ' up to '<id>!' spans the entries that begin with '<id> ': this task's deliveries
local own = redis.call('ZRANGEBYLEX', BY_TASK, '[' .. ID .. ' ', '(' .. ID .. '!')
for _, entry in ipairs(own) do
  redis.call('ZREM', DELIVERIES, string.sub(entry, #ID + 2))
  redis.call('ZREM', BY_TASK, entry)
end
line_event('deleted', state)
local usage, size = unpack(redis.call('HMGET', REC, 'usage', 'bytes'))
if usage and usage ~= '' and redis.call('DECRBY', usage, tonumber(size) or 0) <= 0 then
  redis.call('DEL', usage)
end
redis.call('DEL', REC, HISTORY, EVENTS, PAGES, META)
return {'deleted', state}
