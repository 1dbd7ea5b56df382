-- confirm: RabbitMQ confirmed these turns; each leaves the outbox only if it is still the
-- task's current turn (a newer turn, published since, stays until it is confirmed too).
--
-- KEYS[1] outbox; KEYS[2..n+1] the records of the n tasks
-- ARGV[1..n] the task ids, ARGV[n+1..2n] their confirmed turns
-- Replies: how many entries left the outbox
-- (A script of its own: it spans many tasks, so task.lua's keys do not apply.)

local outbox, n, removed = KEYS[1], #KEYS - 1, 0
for i = 1, n do
  local turn = redis.call('HGET', KEYS[i + 1], 'turn')
  if not turn or turn == ARGV[n + i] then
    removed = removed + redis.call('ZREM', outbox, ARGV[i])
  end
end
return removed
