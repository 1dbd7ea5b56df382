-- page: a run appends one page of a large result. Fenced by the run's token.
--
-- KEYS, ARGV[1..4]: those of task.lua.   ARGV[5] token   ARGV[6] page (JSON list)
-- Replies: the number of pages now, or 0 when stale

local token, page = ARGV[5], ARGV[6]
if not holds_run(token) then return 0 end
return redis.call('RPUSH', PAGES, page)
