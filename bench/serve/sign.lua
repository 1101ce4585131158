-- wrk script for bench/serve/run.sh: POSTs one pre-made signing request, over and over.
--   BODY_FILE  the JSON body to send (kubeca: {"csr", "profile"}; cfssl: {"certificate_request"})
--   TOKEN      optional; sent as "Authorization: Bearer TOKEN" (kubeca)
-- done() prints one machine-readable RESULT line that run.sh parses.
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
