"""Every change of a task record, as one atomic Redis script each (API, worker and scheduler).

A record moves between states only here, so its indexes (all tasks, by state, by name, by
both), the line of waiting tasks, the postponed set, the outbox of messages to publish and its
event stream always agree with it. Key names follow worker.records.Keys: the scripts build
them from the prefix (a single Redis, not a cluster).
"""

from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

# ARGV[1] prefix, ARGV[2] task id, ARGV[3] now (ISO), ARGV[4] now (ms); the rest per script.
_PRELUDE = """
local P, ID, NOW, NOW_MS = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local REC = P .. 'task:' .. ID
-- held by the current run while it is alive (worker.base renews it); expires by itself
local LEASE = P .. 'lease:' .. ID

local function line_score(priority, seq)
  -- higher priority first, then first come: the order RabbitMQ's priority queue delivers in
  return (9 - tonumber(priority)) * 1e13 + seq
end

local function families()
  -- the index families a task belongs to: all tasks, by name, by owner, by owner and name
  local info = redis.call('HMGET', REC, 'name', 'owner', 'seq')
  local name, owner = info[1], info[2] or ''
  return {P .. 'index:', P .. 'index:name:' .. name .. ':', P .. 'index:owner:' .. owner .. ':',
          P .. 'index:owner:' .. owner .. ':name:' .. name .. ':'}, tonumber(info[3])
end

local function move_state(old, new)
  local fams, seq = families()
  for _, fam in ipairs(fams) do
    if old then redis.call('ZREM', fam .. 'state:' .. old, ID) end
    redis.call('ZADD', fam .. 'state:' .. new, seq, ID)
  end
  redis.call('HSET', REC, 'state', new)
end

local function index_all()
  local fams, seq = families()
  for _, fam in ipairs(fams) do redis.call('ZADD', fam .. 'all', seq, ID) end
end

local function record_event(state, extra)
  local fields = {'state', state, 'at', NOW}
  if extra then for _, v in ipairs(extra) do table.insert(fields, v) end end
  redis.call('XADD', P .. 'events:' .. ID, 'MAXLEN', '~', 1000, '*', unpack(fields))
end

local function emit(state, extra)
  -- the event, and a wake-up for the API processes' watchers of this task
  record_event(state, extra)
  redis.call('PUBLISH', P .. 'events', ID)
end

local function remember(change)
  redis.call('RPUSH', P .. 'history:' .. ID, change)
end

local function enqueue(priority)
  -- a new turn in line: the previous message, if any, is superseded
  local turn = redis.call('HINCRBY', REC, 'turn', 1)
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('ZADD', P .. 'line', line_score(priority, seq), ID)
  redis.call('ZADD', P .. 'outbox', NOW_MS, ID)
  return turn
end
"""

# ARGV[5] name, [6] params, [7] priority, [8] owner, [9] not_before ISO or '', [10] its ms,
# [11] most waiting tasks the owner may have, [12] idempotency key or '', [13] request digest,
# [14] how long the key is remembered (s), [15] the owner's creation counter of this minute,
# [16] most creations a minute.
# Returns {state, turn, record, rank}, {'limited'}, {'full'}, or {'existing', task id, digest}
# for a key already used.
_CREATE = """
local name, params, priority = ARGV[5], ARGV[6], ARGV[7]
if ARGV[12] ~= '' then
  local seen = redis.call('HMGET', ARGV[12], 'id', 'digest')
  if seen[1] then return {'existing', seen[1], seen[2]} end
end
local created = redis.call('INCR', ARGV[15])
if created == 1 then redis.call('EXPIRE', ARGV[15], 120) end
if created > tonumber(ARGV[16]) then return {'limited'} end
local mine = P .. 'index:owner:' .. ARGV[8] .. ':state:'
if redis.call('ZCARD', mine .. 'QUEUED') + redis.call('ZCARD', mine .. 'SCHEDULED')
   >= tonumber(ARGV[11]) then
  return {'full'}
end
if ARGV[12] ~= '' then
  redis.call('HSET', ARGV[12], 'id', ID, 'digest', ARGV[13])
  redis.call('EXPIRE', ARGV[12], tonumber(ARGV[14]))
  redis.call('HSET', REC, 'idempotency_key', ARGV[12])
end
local seq = redis.call('INCR', P .. 'seq')
local state = 'QUEUED'
if ARGV[9] ~= '' then state = 'SCHEDULED' end
redis.call('HSET', REC, 'id', ID, 'name', name, 'params', params, 'priority', priority,
           'owner', ARGV[8], 'queued_at', NOW, 'not_before', ARGV[9], 'attempts', 0,
           'turn', 0, 'seq', seq, 'version', 1)
index_all()
move_state(nil, state)
local turn = 0
if state == 'QUEUED' then
  turn = enqueue(priority)
else
  redis.call('ZADD', P .. 'scheduled', tonumber(ARGV[10]), ID)
end
remember(cjson.encode({at = NOW, change = 'created', state = state}))
-- no wake-up: nobody can watch a task before it exists (and every API process would read it)
record_event(state)
-- the new record and its place in line, so the API answers without reading it back
local rank = false
if state == 'QUEUED' then rank = redis.call('ZRANK', P .. 'line', ID) end
return {state, turn, redis.call('HGETALL', REC), rank}
"""

# ARGV[5] force ('1': even a running task). Returns the state it had, or false if unknown.
_DELETE = """
local state = redis.call('HGET', REC, 'state')
if not state then return false end
if state == 'STARTED' and ARGV[5] ~= '1' then return state end
local fams = families()
for _, fam in ipairs(fams) do
  redis.call('ZREM', fam .. 'all', ID)
  redis.call('ZREM', fam .. 'state:' .. state, ID)
end
for _, key in ipairs({'line', 'scheduled', 'outbox', 'expiry', 'cancelling'}) do
  redis.call('ZREM', P .. key, ID)
end
local idem = redis.call('HGET', REC, 'idempotency_key')
if idem and idem ~= '' and ARGV[5] == '1' then redis.call('DEL', idem) end
redis.call('DEL', REC, P .. 'history:' .. ID, P .. 'events:' .. ID, P .. 'pages:' .. ID,
           P .. 'celery-task-meta-' .. ID)
return state
"""

# ARGV[5] turn of the message ('' = sent by another tool), [6] '1' if redelivered,
# [7] name and [8] params (to adopt a task another tool sent), [9] who runs it, [10] its
# lease (ms). Returns {outcome, params}, or {'running', holder} while another run is alive.
_CLAIM = """
local state = redis.call('HGET', REC, 'state')
if not state then
  if ARGV[5] ~= '' then return {'unknown'} end
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', REC, 'id', ID, 'name', ARGV[7], 'params', ARGV[8], 'priority', 5,
             'owner', '', 'queued_at', NOW, 'not_before', '', 'attempts', 0, 'turn', '',
             'seq', seq, 'version', 1)
  index_all()
  move_state(nil, 'QUEUED')
  state = 'QUEUED'
elseif ARGV[5] ~= '' and redis.call('HGET', REC, 'turn') ~= ARGV[5] then
  return {'superseded'}
end
-- the same turn while running: a crash redelivers (run again), anything else is a duplicate
if state == 'STARTED' and ARGV[6] ~= '1' then return {'duplicate'} end
-- a redelivery while the run still holds its lease is no crash: consumer_timeout or a lost
-- connection requeued the message of a run that goes on
if state == 'STARTED' then
  local holder = redis.call('GET', LEASE)
  if holder then return {'running', holder} end
end
if state ~= 'QUEUED' and state ~= 'STARTED' then return {state} end
move_state(state, 'STARTED')
redis.call('HSET', REC, 'started_at', NOW, 'finished_at', '', 'error', '',
           'cancel_requested', '', 'progress', '', 'runner', ARGV[9])
redis.call('SET', LEASE, ARGV[9], 'PX', tonumber(ARGV[10]))
local attempts = redis.call('HINCRBY', REC, 'attempts', 1)
redis.call('ZREM', P .. 'line', ID)
redis.call('ZREM', P .. 'outbox', ID)
emit('STARTED', {'attempts', attempts})
return {'claimed', redis.call('HGET', REC, 'params')}
"""

# ARGV[5] turn ('' = whichever is running), [6] final state, [7] error JSON or '',
# [8] when to forget it (ms). Returns 1 if the record changed.
_FINISH = """
if redis.call('HGET', REC, 'state') ~= 'STARTED' then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', REC, 'turn') ~= ARGV[5] then return 0 end
move_state('STARTED', ARGV[6])
redis.call('HSET', REC, 'finished_at', NOW, 'error', ARGV[7])
redis.call('ZREM', P .. 'cancelling', ID)
redis.call('DEL', LEASE)
redis.call('ZADD', P .. 'expiry', tonumber(ARGV[8]), ID)
if ARGV[7] ~= '' then emit(ARGV[6], {'error', ARGV[7]}) else emit(ARGV[6]) end
return 1
"""

# ARGV[5] hard-stop deadline (ms), [6] when to forget it (ms).
# Returns {'cancelled'}, {'cancelling'} for a running task, {'ended', state}, or {'unknown'}.
_CANCEL = """
local state = redis.call('HGET', REC, 'state')
if not state then return {'unknown'} end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'CANCELLED' then
  return {'ended', state}
end
if state == 'STARTED' then
  redis.call('HSET', REC, 'cancel_requested', NOW)
  redis.call('ZADD', P .. 'cancelling', tonumber(ARGV[5]), ID)
  remember(cjson.encode({at = NOW, change = 'cancel requested'}))
  return {'cancelling'}
end
move_state(state, 'CANCELLED')
redis.call('HSET', REC, 'finished_at', NOW)
redis.call('HINCRBY', REC, 'version', 1)
for _, key in ipairs({'line', 'scheduled', 'outbox'}) do redis.call('ZREM', P .. key, ID) end
redis.call('ZADD', P .. 'expiry', tonumber(ARGV[6]), ID)
remember(cjson.encode({at = NOW, change = 'cancelled', from = state}))
emit('CANCELLED')
return {'cancelled'}
"""

# ARGV[5] expected version or '', [6] new params JSON or '', [7] new priority or '',
# [8] not_before: 'keep' | 'clear' | 'set', [9] its ISO, [10] its ms, [11] change JSON.
# Returns {outcome, detail}: {'ok', turn to publish or 0}, {'conflict', state},
# {'precondition', version}, or {'unknown'}.
_EDIT = """
local state = redis.call('HGET', REC, 'state')
if not state then return {'unknown'} end
if state ~= 'QUEUED' and state ~= 'SCHEDULED' then return {'conflict', state} end
local version = redis.call('HGET', REC, 'version')
if ARGV[5] ~= '' and ARGV[5] ~= version then return {'precondition', version} end
local priority = redis.call('HGET', REC, 'priority')
if ARGV[6] ~= '' then redis.call('HSET', REC, 'params', ARGV[6]) end
local requeue = false
if ARGV[7] ~= '' and ARGV[7] ~= priority then
  priority = ARGV[7]
  redis.call('HSET', REC, 'priority', priority)
  requeue = state == 'QUEUED'
end
if ARGV[8] == 'set' then
  redis.call('HSET', REC, 'not_before', ARGV[9])
  redis.call('ZADD', P .. 'scheduled', tonumber(ARGV[10]), ID)
  if state == 'QUEUED' then
    move_state(state, 'SCHEDULED')
    redis.call('ZREM', P .. 'line', ID)
    redis.call('ZREM', P .. 'outbox', ID)
    redis.call('HINCRBY', REC, 'turn', 1)
    state = 'SCHEDULED'
  end
  requeue = false
elseif ARGV[8] == 'clear' then
  redis.call('HSET', REC, 'not_before', '')
  if state == 'SCHEDULED' then
    redis.call('ZREM', P .. 'scheduled', ID)
    move_state(state, 'QUEUED')
    state = 'QUEUED'
    requeue = true
  end
end
local turn = 0
if requeue then turn = enqueue(priority) end
redis.call('HINCRBY', REC, 'version', 1)
remember(ARGV[11])
emit(state)
return {'ok', turn}
"""

# Releases a postponed task that is due. Returns its turn, or 0 if it is not (or no longer)
# postponed.
_RELEASE = """
if redis.call('HGET', REC, 'state') ~= 'SCHEDULED' then
  redis.call('ZREM', P .. 'scheduled', ID)
  return 0
end
redis.call('ZREM', P .. 'scheduled', ID)
move_state('SCHEDULED', 'QUEUED')
remember(cjson.encode({at = NOW, change = 'released'}))
local turn = enqueue(redis.call('HGET', REC, 'priority'))
emit('QUEUED')
return turn
"""

# ARGV[5] progress JSON. Keeps the latest progress on the record (so reads need nothing else)
# and appends a progress event.
_PROGRESS = """
if redis.call('HGET', REC, 'state') ~= 'STARTED' then return 0 end
redis.call('HSET', REC, 'progress', ARGV[5])
emit('PROGRESS', {'progress', ARGV[5]})
return 1
"""

# ARGV[5] who runs it, [6] lease (ms). Renews the lease of a run still going on; takes it
# again if it lapsed (Redis was away) and nobody has claimed the task since. Returns 1 if held.
_RENEW = """
if redis.call('HGET', REC, 'state') ~= 'STARTED' then return 0 end
if redis.call('HGET', REC, 'runner') ~= ARGV[5] then return 0 end
redis.call('SET', LEASE, ARGV[5], 'PX', tonumber(ARGV[6]))
return 1
"""

SCRIPTS = {
    "create": _CREATE,
    "delete": _DELETE,
    "claim": _CLAIM,
    "finish": _FINISH,
    "cancel": _CANCEL,
    "edit": _EDIT,
    "release": _RELEASE,
    "progress": _PROGRESS,
    "renew": _RENEW,
}


@dataclass(frozen=True)
class Transitions:
    """The scripts registered on one Redis client (sync or asyncio)."""

    create: object
    delete: object
    claim: object
    finish: object
    cancel: object
    edit: object
    release: object
    progress: object
    renew: object

    @classmethod
    def register(cls, client: Redis | AsyncRedis) -> "Transitions":
        return cls(
            **{name: client.register_script(_PRELUDE + body) for name, body in SCRIPTS.items()}
        )
