-- wrk script for scripts/bench-sim.sh. Mode (after `--`): create | search | scan.
--   create: POST a contact with a unique email per request
--   search: find by email (EQ on the unique property: served by the email index)
--   scan:   EQ on firstname (a full scan of the seeded contacts)
local mode, counter, thread_id = "create", 0, 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  mode = args[1] or "create"
end

local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer bench" }
local filter = '{"filterGroups":[{"filters":[{"propertyName":"%s","operator":"EQ","value":"%s"}]}],"limit":10}'

request = function()
  counter = counter + 1
  if mode == "create" then
    local body = string.format('{"properties":{"email":"bench-%d-%d@example.com","firstname":"Bench"}}', tid, counter)
    return wrk.format("POST", "/crm/v3/objects/contacts", headers, body)
  end
  local n = counter % 10000
  local body = mode == "search" and string.format(filter, "email", "seed" .. n .. "@example.com")
    or string.format(filter, "firstname", "seed" .. n)
  return wrk.format("POST", "/crm/v3/objects/contacts/search", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
