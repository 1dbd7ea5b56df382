-- store_result: the result backend's state write (Celery's meta of a task), in one round
-- trip. Celery reads the stored state first, because a SUCCESS is never overwritten (a lost
-- worker's late write must not undo a result), then sets and publishes the new one; here
-- the three happen at once.
--
-- KEYS[1] the task's Celery meta key
-- ARGV[1] the encoded meta, ARGV[2] its expiry in seconds (0: none)
-- Replies: 0 when the stored state is SUCCESS (left alone), else 1
-- (A script of its own: it writes Celery's key, not a task record. The STARTED and SUCCESS
-- of a run go with its claim and finish instead: store_meta in task.lua, the same steps.)

local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, meta = pcall(cjson.decode, stored)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
