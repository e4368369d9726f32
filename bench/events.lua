-- wrk script: POST /api/events with BATCH lifecycle events per request (unique event ids per
-- thread, USERS subjects), then p50/p99 in a line scripts can read.
-- Usage: wrk ... -s bench/events.lua URL -- BATCH USERS TOKEN
local threads = {}
local next_id = 0

setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

init = function(args)
  batch = tonumber(args[1] or "100")
  users = tonumber(args[2] or "10000")
  token = args[3] or "bench"
  counter = 0
  math.randomseed(tid + 7)
end

request = function()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    local kind = counter % 3
    local body
    if kind == 0 then
      body = string.format('"type":"nova_earned","data":{"amount":%d}', math.random(1, 100))
    elseif kind == 1 then
      body = string.format('"type":"redemption","data":{"merchant_id":"m%d","amount":%d}', math.random(1, 50), math.random(1, 30))
    else
      body = '"type":"wallet_pass_installed","data":{"platform":"apple"}'
    end
    parts[i] = string.format('{"event_id":"t%d-%d","occurred_at":%d,"subject":{"external_id":"u%d"},%s}',
      tid, counter, 1790000000000 + counter, math.random(1, users), body)
  end
  return wrk.format("POST", "/api/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token},
    '{"events":[' .. table.concat(parts, ",") .. ']}')
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d errors_connect=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, summary.errors.connect,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
