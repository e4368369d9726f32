-- wrk script: search contacts by email (EQ) over a seeded table.
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"filterGroups":[{"filters":[{"propertyName":"email","operator":"EQ","value":"seed%d@example.com"}]}],"limit":10}', counter % 10000)
  return wrk.format("POST", "/crm/v3/objects/contacts/search", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer bench",
  }, body)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
