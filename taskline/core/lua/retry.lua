-- retry: a run failed in a way its task type retries: the task waits for its next attempt
-- (SCHEDULED until not_before, in the postponed set, so the scheduler puts it back in line
-- in its time and the worker goes on with the line meanwhile). The failure is kept on the
-- record (`errors`) and in the history. Fenced by the run's token, like finish.
--
-- KEYS, ARGV[1..4]: those of task.lua.
-- ARGV[5] token   ARGV[6] error (JSON: type, message)
-- ARGV[7] not_before ISO-8601   ARGV[8] not_before (ms)
-- ARGV[9] kept    most failures the record's `errors` keeps (the oldest go first)
-- Replies:
--   {'retrying'}     postponed; the failure is recorded with its attempt and time
--   {'cancelling'}   a cancel was asked for: not retried (the run ends as a failure does)
--   {'stale'}        the run no longer holds the task: nothing changed

local token, error, not_before = ARGV[5], ARGV[6], ARGV[7]
local not_before_ms, kept = tonumber(ARGV[8]), tonumber(ARGV[9])
if not holds_run(token) then return {'stale'} end
local asked = redis.call('HGET', REC, 'cancel_requested')
if asked and asked ~= '' then return {'cancelling'} end

local failure = cjson.decode(error)
failure['attempt'] = tonumber(token)
failure['at'] = NOW
local stored = redis.call('HGET', REC, 'errors')
local errors = {}
if stored and stored ~= '' then errors = cjson.decode(stored) end
table.insert(errors, failure)
while #errors > kept do table.remove(errors, 1) end

move_state('STARTED', 'SCHEDULED')
local listed = '[]'
if #errors > 0 then listed = cjson.encode(errors) end
redis.call('HSET', REC, 'not_before', not_before, 'errors', listed,
           'runner', '', 'progress', '', 'renewed_at', '', 'renewed_ms', '')
redis.call('DEL', LEASE)
redis.call('ZADD', SCHEDULED, not_before_ms, ID)
local said = cjson.encode(failure)
remember({at = NOW, change = 'retry', error = failure, not_before = not_before})
emit('retrying', 'SCHEDULED', {'attempts', token, 'error', said, 'not_before', not_before})
return {'retrying'}
