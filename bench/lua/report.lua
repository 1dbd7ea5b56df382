-- Closed-loop run: wrk's own counters and latency percentiles as one JSON line.
-- Included after a generated preamble that sets wrk.method, wrk.body and wrk.headers.

statuses = {}  -- global: done() reads it from each thread

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      codes[code] = (codes[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(codes) do
    table.insert(parts, string.format('"%d":%d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_s":%.6f,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_timeout":%d,"errors_status":%d,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p95_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3, table.concat(parts, ",")))
end
