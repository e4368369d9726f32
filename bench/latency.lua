-- wrk script: prints p50/p99 in a line scripts can read.
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d errors_connect=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, summary.errors.connect,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
