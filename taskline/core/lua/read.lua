-- read: several tasks at once, each with Celery's result and its place in its line; one
-- command for what a pipeline of three per task would do, and cheaper to send and parse.
--
-- KEYS[1..L] the lines' sets of waiting tasks; then per task two keys: its record, its
--            Celery result (meta)
-- ARGV[1] L  ARGV[2..L+1] the lines' names, in the order of their keys ('' names the line of a
--            record made before lines); then the task ids, in the order of their keys
-- Replies: per task {record as a flat list, meta or false, rank in its line or false}

local lines = tonumber(ARGV[1])
local line_of = {}
for i = 1, lines do line_of[ARGV[i + 1]] = KEYS[i] end
local out = {}
for i = 1, #ARGV - lines - 1 do
  local rec, meta = KEYS[lines + 2 * i - 1], KEYS[lines + 2 * i]
  local id = ARGV[lines + 1 + i]
  local line = line_of[redis.call('HGET', rec, 'line') or '']
  local rank = false
  if line then rank = redis.call('ZRANK', line, id) end
  out[i] = {redis.call('HGETALL', rec), redis.call('GET', meta), rank}
end
return out
