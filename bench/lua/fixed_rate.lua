-- Open-loop run at a fixed rate (what wrk2 does, which Debian does not ship).
-- Run with as many threads as connections (-t N -c N): each thread then drives one
-- connection on its own schedule of `rate / N` requests a second. A request's latency counts
-- from the moment it was due when the previous response came too late to send it on time
-- (no coordinated omission), else from the moment it was sent.
-- Arguments after `--`: the total rate (requests/s) and the number of threads.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

local interval, due, prev_done, sent_from = 0, nil, 0, 0
latencies, bad, n = {}, 0, 0

function init(args)
  local rate, count = tonumber(args[1]), tonumber(args[2])
  interval = 1e6 * count / rate
  -- spread the threads' schedules evenly over one interval
  due = now_us() + interval * (index - 1) / count
end

function delay()
  local wait = (due - now_us()) / 1e3
  if wait <= 0 then return 0 end
  return math.ceil(wait)
end

function request()
  local now = now_us()
  if prev_done > due then sent_from = due else sent_from = now end
  due = due + interval
  return wrk.format()
end

function response(status, headers, body)
  local now = now_us()
  n = n + 1
  latencies[n] = now - sent_from
  prev_done = now
  if status >= 400 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local all, errors = {}, 0
  for _, thread in ipairs(threads) do
    for _, v in ipairs(thread:get("latencies")) do table.insert(all, v) end
    errors = errors + thread:get("bad")
  end
  table.sort(all)
  local function pct(q)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * q / 100))] / 1e3
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_s":%.6f,"errors_status":%d,"errors_connect":%d,' ..
    '"errors_read":%d,"errors_timeout":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f}\n',
    #all, summary.duration / 1e6, errors, e.connect, e.read, e.timeout, pct(50), pct(90),
    pct(99), pct(100)))
end
