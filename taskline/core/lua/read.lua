-- read: several tasks at once, each with Celery's result and its place in line; one command
-- for what a pipeline of three per task would do, and cheaper to send and parse.
--
-- KEYS[1] the line; then per task two keys: its record, its Celery result (meta)
-- ARGV[1..n] the task ids, in the order of their keys
-- Replies: per task {record as a flat list, meta or false, rank in line or false}

local out = {}
for i = 1, #ARGV do
  local rec, meta = KEYS[2 * i], KEYS[2 * i + 1]
  out[i] = {redis.call('HGETALL', rec), redis.call('GET', meta),
            redis.call('ZRANK', KEYS[1], ARGV[i])}
end
return out
