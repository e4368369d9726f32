-- wrk script: POST a contact with a unique email per request.
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  counter = 0
end
request = function()
  counter = counter + 1
  local body = string.format('{"properties":{"email":"bench-%d-%d@example.com","firstname":"Bench"}}', tid, counter)
  return wrk.format("POST", "/crm/v3/objects/contacts", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer bench",
  }, body)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
