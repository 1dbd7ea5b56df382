-- The keys, arguments and helpers every transition script shares; core.transitions loads
-- this file in front of each script, so a script reads as if it began here.
--
-- KEYS[1..14]  the task's keys, in the order of core.records.Keys.of_task:
--   REC (the record hash), EVENTS (its event stream), HISTORY (its list of changes),
--   LINE (its line's waiting tasks in run order), and of its line too: OUTBOX (turns
--   awaiting RabbitMQ's confirm, by ms), SCHEDULED (postponed tasks, by due ms), EXPIRY
--   (finished tasks, by forget ms), CANCELLING (running tasks asked to stop, by hard-stop
--   ms); LEASE (held by the live run),
--   SEQ (the creation counter), PAGES (pages of a large result), META (Celery's result),
--   LINE_EVENTS (the stream of every change of every task: GET /events), WEBHOOKS (ended
--   tasks whose webhooks the deliverer has still to plan, by ms ended)
-- ARGV[1..4]   ID (task id), NOW (ISO-8601 UTC), NOW_MS (epoch ms), CHANNEL (pub/sub
--              channel that wakes the API's watchers)
-- A script's own KEYS and ARGV start at 15 and 5.
--
-- A script that may end a task passes the ended states a global webhook hears of to
-- hear_of (one of its own ARGV) before it ends anything: an end no URL hears of stays out
-- of WEBHOOKS.
--
-- A script that may end a task counts the end in the deployment's ended-task figures
-- (core.task_metrics) when it records it, atomically and in the same round trip: it sets
-- METRICS to that hash (one of its own KEYS; nil, as TASKLINE_METRICS=false leaves it, counts
-- nothing) before it ends anything.
--
-- Index keys: a record carries `families`, the JSON list of its index families written at
-- creation from core.records.Keys.families (rewritten by an edit of its searchable params,
-- refamily); `FAMILY .. 'all'` and `FAMILY .. 'state:' .. S` are the sorted sets of each
-- (score: the creation sequence). Beside the families, under the
-- first (all tasks, `PREFIX .. 'index:'`; core.records.Keys.search), the search indexes:
-- `ids` (every task's id, score 0: prefixes by ZRANGEBYLEX), `created` (every task by its
-- creation ms) and `finished` (every task in a final state, by when it got there, ms). A
-- task is in them from its creation (index_all) until it is deleted (delete.lua).

local REC, EVENTS, HISTORY, LINE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local OUTBOX, SCHEDULED, EXPIRY, CANCELLING = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local LEASE, SEQ, PAGES, META, LINE_EVENTS = KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local WEBHOOKS = KEYS[14]
local ID, NOW, NOW_MS, CHANNEL = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

-- At most this many entries of history are kept per task (the oldest go first).
local HISTORY_MAX = 100

local function line_score(priority, seq)
  -- higher priority first, then first come: the order RabbitMQ's priority queue delivers in
  return (9 - tonumber(priority)) * 1e13 + seq
end

local fixed_fields = nil

local function fixed()
  -- the fields a record keeps as created (name, owner, index families, creation sequence,
  -- its owner's byte count, its line: '' made before lines), read at most once a script;
  -- nil while there is no record
  if not fixed_fields then
    local found = redis.call('HMGET', REC, 'name', 'owner', 'families', 'seq', 'usage', 'line')
    if not found[1] then return nil end
    fixed_fields = {name = found[1], owner = found[2] or '', families = cjson.decode(found[3]),
                    seq = tonumber(found[4]), usage = found[5], line = found[6] or ''}
  end
  return fixed_fields
end

local function families()
  local record = fixed()
  return record.families, record.seq
end

local FINAL = {SUCCESS = true, FAILURE = true, CANCELLED = true}

local function search_index(kind)
  -- a search index (ids, created, finished): under the first family, of all tasks
  return families()[1] .. kind
end

local function move_state(old, new, fields)
  -- the record's state and its index entries (and its end ms, in a final state);
  -- `fields`, more of the record's fields to set with it (a flat list of names and values)
  local fams, seq = families()
  for _, fam in ipairs(fams) do
    if old then redis.call('ZREM', fam .. 'state:' .. old, ID) end
    redis.call('ZADD', fam .. 'state:' .. new, seq, ID)
  end
  if FINAL[new] then
    redis.call('ZADD', search_index('finished'), NOW_MS, ID)
  elseif old and FINAL[old] then
    redis.call('ZREM', search_index('finished'), ID)
  end
  redis.call('HSET', REC, 'state', new, unpack(fields or {}))
end

local function index_all()
  -- a new record in its families' `all` sets and in the search indexes of every task
  local fams, seq = families()
  for _, fam in ipairs(fams) do redis.call('ZADD', fam .. 'all', seq, ID) end
  redis.call('ZADD', search_index('ids'), 0, ID)
  redis.call('ZADD', search_index('created'), NOW_MS, ID)
end

local function refamily(new, state)
  -- the record's index families become `new` (an edit changed its searchable params): out
  -- of the families it leaves, into those it joins, in its state `state`
  local record = fixed()
  local joins, left = {}, {}
  for _, fam in ipairs(new) do joins[fam] = true end
  for _, fam in ipairs(record.families) do
    left[fam] = true
    if not joins[fam] then
      redis.call('ZREM', fam .. 'all', ID)
      redis.call('ZREM', fam .. 'state:' .. state, ID)
    end
  end
  for _, fam in ipairs(new) do
    if not left[fam] then
      redis.call('ZADD', fam .. 'all', record.seq, ID)
      redis.call('ZADD', fam .. 'state:' .. state, record.seq, ID)
    end
  end
  redis.call('HSET', REC, 'families', cjson.encode(new))
  record.families = new
end

local function line_event(kind, state, extra)
  -- the change on the stream of the whole line (kind: created, edited, postponed, released,
  -- started, progress, ended, deleted, requeued, cancelling, retrying)
  local record = fixed()
  local fields = {'kind', kind, 'id', ID, 'state', state, 'at', NOW,
                  'name', record and record.name or '', 'owner', record and record.owner or '',
                  'line', record and record.line or ''}
  if extra then for _, v in ipairs(extra) do table.insert(fields, v) end end
  redis.call('XADD', LINE_EVENTS, 'MAXLEN', '~', 10000, '*', unpack(fields))
end

local function record_event(kind, state, extra)
  -- the event on the task's own stream and on the line's
  local fields = {'state', state, 'at', NOW}
  if extra then for _, v in ipairs(extra) do table.insert(fields, v) end end
  redis.call('XADD', EVENTS, 'MAXLEN', '~', 1000, '*', unpack(fields))
  line_event(kind, state, extra)
end

local function emit(kind, state, extra)
  -- the event, and a wake-up for the API processes' watchers of this task
  record_event(kind, state, extra)
  redis.call('PUBLISH', CHANNEL, ID)
end

local function remember(change)
  redis.call('RPUSH', HISTORY, cjson.encode(change))
  redis.call('LTRIM', HISTORY, -HISTORY_MAX, -1)
end

local function enqueue(priority)
  -- a new turn in line: the previous message, if any, is superseded
  local turn = redis.call('HINCRBY', REC, 'turn', 1)
  local seq = redis.call('INCR', SEQ)
  redis.call('ZADD', LINE, line_score(priority, seq), ID)
  redis.call('ZADD', OUTBOX, NOW_MS, ID)
  return turn
end

-- The hash of ended-task figures an end is counted in; nil counts nothing.
local METRICS = nil

local function count_end(final, times)
  -- the end's outcome under its type, and the run's `times` that are known: a list of
  -- {histogram ('wait' or 'run'), bucket index, seconds}, the fields core.task_metrics reads
  if not METRICS then return end
  local name = fixed().name
  redis.call('HINCRBY', METRICS, 'ended|' .. name .. '|' .. final, 1)
  for _, entry in ipairs(times or {}) do
    redis.call('HINCRBY', METRICS, entry[1] .. '|' .. name .. '|' .. entry[2], 1)
    redis.call('HINCRBYFLOAT', METRICS, entry[1] .. '_sum|' .. name, entry[3])
  end
end

-- The ended states a global webhook hears of (TASKLINE_WEBHOOKS); a script that may end a
-- task sets them from its caller's (hear_of) before it ends anything. By default all three.
local HEARD = FINAL

local function hear_of(states)
  -- `states`: comma-separated, as core.transitions passes them ('' for none)
  HEARD = {}
  for state in string.gmatch(states, '[^,]+') do HEARD[state] = true end
end

local function ended_for_webhooks(final)
  -- the end waits in WEBHOOKS for the deliverer, in the same script as the end itself: an
  -- end is never missed, whether the deliverer runs or not. An end nothing hears of (no
  -- global webhook of its state, no callback_url of its own) is not added: the deliverer
  -- would only take it off again
  if HEARD[final] or redis.call('HEXISTS', REC, 'callback_url') == 1 then
    redis.call('ZADD', WEBHOOKS, 'NX', NOW_MS, ID)
  end
end

local function end_task(old, final, error, forget_ms, times)
  -- a task reaches its final state: recorded, out of the cancelling set, its lease (if any)
  -- gone, forgotten in its time, its webhooks to plan, counted (with the run's `times`, see
  -- count_end), and the end told
  move_state(old, final, {'finished_at', NOW, 'error', error})
  redis.call('ZREM', CANCELLING, ID)
  redis.call('DEL', LEASE)
  redis.call('ZADD', EXPIRY, forget_ms, ID)
  ended_for_webhooks(final)
  count_end(final, times)
  if error ~= '' then emit('ended', final, {'error', error}) else emit('ended', final) end
end

local function store_meta(meta, expires)
  -- Celery's result meta of the task (META), as its result backend stores it: never over a
  -- stored SUCCESS, published on its key; '' stores nothing. store_result.lua does the same
  -- for the backend's other writes.
  if meta == '' then return end
  local stored = redis.call('GET', META)
  if stored then
    local ok, found = pcall(cjson.decode, stored)
    if ok and type(found) == 'table' and found['status'] == 'SUCCESS' then return end
  end
  if tonumber(expires) > 0 then
    redis.call('SET', META, meta, 'EX', expires)
  else
    redis.call('SET', META, meta)
  end
  redis.call('PUBLISH', META, meta)
end

local function holds_run(token)
  -- the writer's run token (its attempt number) is the running attempt's
  local found = redis.call('HMGET', REC, 'state', 'attempts')
  return found[1] == 'STARTED' and found[2] == token
end

local function release_range()
  -- give back a reserved range no message of this task can use any more (it never ran)
  local ledger = redis.call('HGET', REC, 'ledger')
  if ledger and ledger ~= '' and redis.call('HGET', REC, 'attempts') == '0' then
    redis.call('ZREM', ledger, redis.call('HGET', REC, 'ledger_entry'))
    redis.call('HSET', REC, 'ledger', '', 'ledger_entry', '')
  end
end

local function overlapping(ledger, first, last)
  -- the ledger entry ('first:last:task') that overlaps first..last, or nil; ranges never
  -- overlap, so the one starting last at or below `last` is the only candidate
  local below = redis.call('ZREVRANGEBYSCORE', ledger, last, '-inf', 'LIMIT', 0, 1)
  if below[1] then
    local _, upto = string.match(below[1], '^(%d+):(%d+):')
    if tonumber(upto) >= tonumber(first) then return below[1] end
  end
  return nil
end

local function reserve(ledger, first, last)
  -- reserve first..last of a ledger for this task; the clashing entry if taken
  local clash = overlapping(ledger, first, last)
  if clash then return clash end
  local entry = first .. ':' .. last .. ':' .. ID
  redis.call('ZADD', ledger, first, entry)
  redis.call('HSET', REC, 'ledger', ledger, 'ledger_entry', entry)
  return nil
end
